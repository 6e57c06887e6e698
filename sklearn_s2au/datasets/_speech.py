"""The speech synthesiser: articulation timeline and source-filter rendering at 16 kHz."""

import numpy as np
from scipy import fft as sp_fft
from scipy.signal import get_window

from ._latent import _FS, _HOP

_WIN = 512                # 32 ms analysis window of the time-varying filter
_NFFT = 1024              # zero-padded so the resonators' ringing is not wrapped around
_WINDOW = get_window("hann", _WIN)
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / _FS)
_REF_LEVEL = 1.2          # amplitude of the glottal source at 0 dB level
_LOG_TILT = np.log1p((_FREQS / 1000.0) ** 2)
_LOG_LIP = np.log1p((_FREQS / 800.0) ** 2)

# Segment attributes (columns of the per-segment table).
_VOICE, _FRIC, _FRIC_FC, _FRIC_BW, _F1, _F2, _F3, _NASAL, _PAUSE, _VOWEL = range(10)
_SCHWA = (500.0, 1500.0, 2500.0)
# Vowel targets (adult male reference, Hz): F1, F2, F3; and the choice probabilities.
# o, u, y, ø are rounded (low F2/F3).
_VOWELS = np.array([[730, 1300, 2500], [400, 2000, 2600], [550, 1800, 2500],
                    [280, 2250, 2900], [430, 850, 2400], [300, 750, 2300],
                    [280, 1800, 2150], [380, 1500, 2250]], dtype=float)
_VOWEL_P = np.array([0.2, 0.15, 0.13, 0.14, 0.12, 0.1, 0.08, 0.08])
# Consonants: manner (0 stop, 1 fricative, 2 nasal, 3 approximant), voiced, formant loci
# F1-F3 (Hz), noise centre and bandwidth (Hz) and noise amplitude; choice probabilities.
_CONSONANTS = np.array([
    # manner voiced F1   F2    F3    fc    bw    noise
    [0, 0, 250, 900, 2200, 1200, 3000, 0.5],    # p
    [0, 0, 250, 1700, 2600, 4000, 3000, 0.6],   # t
    [0, 0, 250, 1900, 2300, 2200, 1500, 0.6],   # k
    [0, 1, 250, 900, 2200, 1200, 3000, 0.25],   # b
    [0, 1, 250, 1700, 2600, 4000, 3000, 0.3],   # d
    [0, 1, 250, 1900, 2300, 2200, 1500, 0.3],   # g
    [1, 0, 300, 1100, 2300, 6500, 5000, 0.25],  # f
    [1, 0, 300, 1700, 2600, 5500, 1500, 0.7],   # s
    [1, 0, 300, 1900, 2500, 3000, 1500, 0.7],   # ʃ
    [1, 1, 300, 1100, 2300, 6500, 5000, 0.15],  # v
    [1, 1, 300, 1700, 2600, 5500, 1500, 0.35],  # z
    [2, 1, 250, 1000, 2200, 0, 1, 0.0],         # m
    [2, 1, 250, 1600, 2600, 0, 1, 0.0],         # n
    [3, 1, 350, 1100, 2700, 0, 1, 0.0],         # l
    [3, 1, 500, 1300, 2400, 1500, 1000, 0.1],   # ʁ
])
_CONSONANT_P = np.array([0.08, 0.1, 0.08, 0.05, 0.07, 0.03, 0.05, 0.1, 0.04, 0.04, 0.03,
                         0.09, 0.07, 0.1, 0.07])
_CONSONANT_P = _CONSONANT_P / _CONSONANT_P.sum()


def _timeline(rng, duration, rate):
    """Segments (start, end, attributes) of pauses and phones, and the phrase spans."""
    rows = []        # (start, end, voice, fric, fc, bw, f1, f2, f3, nasal, pause, vowel)

    def add(t0, t1, voice=0.0, fric=0.0, fc=0.0, bw=1.0, formants=_SCHWA, nasal=0.0,
            pause=0.0, vowel=0.0):
        if t1 > t0:
            rows.append((t0, t1, voice, fric, fc, bw, *formants, nasal, pause, vowel))

    def consonant(t0, t1):
        manner, voiced, f1, f2, f3, fc, bw, noise = _CONSONANTS[
            rng.choice(len(_CONSONANTS), p=_CONSONANT_P)]
        loci = (f1, f2, f3)
        if manner == 0:        # plosive: closure, then burst + aspiration
            release = t0 + (t1 - t0) * rng.uniform(0.55, 0.75)
            add(t0, release, voice=0.15 * voiced, formants=loci)
            add(release, t1, voice=0.6 * voiced, fric=noise, fc=fc, bw=bw, formants=loci)
        elif manner == 1:
            add(t0, t1, voice=0.5 * voiced, fric=noise, fc=fc, bw=bw, formants=loci)
        elif manner == 2:
            add(t0, t1, voice=0.35, formants=loci, nasal=1.0)
        else:
            add(t0, t1, voice=0.7, fric=noise, fc=fc, bw=bw, formants=loci)

    lead = rng.uniform(0.08, 0.35)
    speech_end = duration - rng.uniform(0.08, 0.35)
    add(0.0, lead, pause=1.0)
    phrases = []
    t = lead
    while t < speech_end - 0.15:
        phrase_end = min(t + rng.uniform(0.6, 1.8), speech_end)
        if speech_end - phrase_end < 0.4:
            phrase_end = speech_end
        phrases.append((t, phrase_end))
        while t < phrase_end - 1e-9:
            syllable = rng.uniform(0.13, 0.26) / rate
            end = phrase_end if phrase_end - (t + syllable) < 0.08 else t + syllable
            onset_c = rng.random() < 0.85
            coda_c = rng.random() < 0.2 and end - t > 0.15
            v0 = t + (end - t) * rng.uniform(0.3, 0.45) if onset_c else t
            v1 = end - (end - t) * rng.uniform(0.2, 0.3) if coda_c else end
            if onset_c:
                consonant(t, v0)
            add(v0, v1, voice=1.0,
                formants=_VOWELS[rng.choice(len(_VOWELS), p=_VOWEL_P)], vowel=1.0)
            if coda_c:
                consonant(v1, end)
            t = end
        if t < speech_end - 0.15:
            pause_end = min(t + rng.uniform(0.15, 0.45), speech_end)
            add(t, pause_end, pause=1.0)
            t = pause_end
    add(t, duration + 1.0, pause=1.0)
    table = np.array(rows)
    return table[:, 0], table[:, 1], table[:, 2:], np.array(phrases).reshape(-1, 2)


def _render(rng, n_ctrl, *, f0, voice, fric, tension, breathiness, formants,
            formant_scale, nasal, closure, brightness, fric_fc, fric_bw):
    """Source-filter synthesis at 16 kHz from control-rate (125 Hz) parameters."""
    n = n_ctrl * _HOP
    t_ctrl = (np.arange(n_ctrl) + 0.5) * _HOP
    t = np.arange(n, dtype=np.float32)

    def per_sample(values):
        return np.interp(t, t_ctrl, values).astype(np.float32)

    # Glottal source: Rosenberg pulses (opening over 60 % of the open phase, closing over
    # 40 %); tenser voice has a shorter open phase, hence a sharper closure.
    f0_s = np.interp(t, t_ctrl, f0)
    phase = np.cumsum(f0_s / _FS)
    phi = (phase - np.floor(phase)).astype(np.float32)
    open_q = per_sample(0.6 - 0.2 * tension)
    rising = 0.6 * open_q
    flow = np.where(phi < rising, 0.5 - 0.5 * np.cos(np.pi * phi / rising),
                    np.cos(np.minimum(0.5 * np.pi * (phi - rising) / (0.4 * open_q),
                                      0.5 * np.pi)))
    pulse = np.diff(flow, prepend=np.float32(0)) * (120.0 / f0_s).astype(np.float32)
    aspiration = per_sample(0.001 + 0.0125 * breathiness * (1 - tension))
    noise = rng.standard_normal((2, n), dtype=np.float32)
    source = per_sample(voice * _REF_LEVEL) * (pulse + aspiration * noise[0] * (0.3 + flow))
    frication = per_sample(fric * (0.08 * _REF_LEVEL)) * noise[1]

    # Vocal tract per control frame: 5 formants and a nasal zero over a fixed nasal pole.
    f1, f2, f3 = formants
    centre = np.column_stack([f1, f2, f3, 3300 * formant_scale, 4200 * formant_scale])
    width = np.array([70.0, 90.0, 130.0, 200.0, 250.0]) * (1 + 0.5 * breathiness)
    tract_gain, tract = _polynomial(np.minimum(centre, 0.45 * _FS), width)
    zero_gain, zeros = _polynomial(270.0 + 730.0 * nasal[:, None], np.array([150.0]))
    pole_gain, pole = _polynomial(np.array([[270.0]]), np.array([150.0]))
    nasal_pole = (pole_gain[0] / pole[0]).astype(np.complex64)
    # Breathy voice: steeper spectral tilt, tense or smiling voice: flatter; closed lips:
    # low-pass.
    shape = np.exp(np.outer(-0.25 * (0.7 - 0.5 * tension - 0.6 * brightness), _LOG_TILT)
                   + np.outer(-0.5 * closure, _LOG_LIP)).astype(np.float32)
    shape *= (tract_gain / zero_gain)[:, None].astype(np.float32)
    kinds, which = np.unique(np.column_stack([fric_fc, fric_bw]), axis=0, return_inverse=True)
    fc = np.maximum(kinds[:, :1], 500.0)
    bw = np.maximum(kinds[:, 1:], 200.0)
    shaping = (1 / np.sqrt(1 + ((_FREQS - fc) / (0.5 * bw)) ** 2)) * (_FREQS / (_FREQS + 500))
    spectra = _stft(np.stack([source, frication]), n_ctrl)
    spectrum = spectra[0] * (zeros / tract * nasal_pole) * shape
    spectrum += spectra[1] * shaping.astype(np.float32)[which.ravel()]
    return _istft(spectrum, n)


def _polynomial(freq, bandwidth):
    """Cascaded 2-pole resonators as one polynomial in z^-1, on the FFT bins.

    ``freq`` is ``(n_ctrl, k)``, ``bandwidth`` ``(k,)`` (Hz). Returns the gain that
    normalises the cascade to 1 at 0 Hz, ``(n_ctrl,)``, and the polynomial's values on the
    FFT bins, complex64 ``(n_ctrl, NFFT // 2 + 1)``: the cascade's response is
    ``gain / values`` (one FFT per frame instead of evaluating each resonator).
    """
    r = np.exp(-np.pi * bandwidth / _FS)
    c = 2 * r * np.cos(2 * np.pi * freq / _FS)
    poly = np.zeros((len(freq), 2 * freq.shape[1] + 1))
    poly[:, 0] = 1.0
    for k in range(freq.shape[1]):
        previous = poly.copy()
        poly[:, 1:] -= c[:, k, None] * previous[:, :-1]
        poly[:, 2:] += r[k] ** 2 * previous[:, :-2]
    gain = np.prod(1 - c + r ** 2, axis=1)
    return gain, sp_fft.rfft(poly.astype(np.float32), n=_NFFT, axis=1)


def _stft(x, n_ctrl):
    """Spectra (complex64) of Hann-windowed frames centred on the control frames.

    ``x`` is ``(n_signals, n_samples)``; returns ``(n_signals, n_ctrl, NFFT // 2 + 1)``.
    """
    pad = _WIN // 2 - _HOP // 2
    padded = np.zeros((len(x), n_ctrl * _HOP + _WIN), dtype=np.float32)
    padded[:, pad:pad + x.shape[1]] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, _WIN, axis=1)[:, ::_HOP][:, :n_ctrl]
    return sp_fft.rfft(frames * _WINDOW.astype(np.float32), n=_NFFT, axis=-1)


def _istft(spectrum, n):
    """Overlap-add of the filtered frames (the Hann windows at hop WIN/4 sum to 2)."""
    frames = sp_fft.irfft(spectrum, n=_NFFT, axis=1)
    n_ctrl, k = len(frames), _NFFT // _HOP
    blocks = np.zeros((n_ctrl + k, _HOP))
    frames = frames.reshape(n_ctrl, k, _HOP)
    for i in range(k):
        blocks[i:i + n_ctrl] += frames[:, i]
    pad = _WIN // 2 - _HOP // 2
    return blocks.ravel()[pad:pad + n] / (_WIN / (2 * _HOP))
