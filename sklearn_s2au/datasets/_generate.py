"""The generated demo corpus: :func:`make_speech_au_corpus`."""

import math

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter1d
from scipy.signal import lfilter, resample_poly

from ..framing import frame_count
from .._utils import seed_from
from .._validation import check_int
from ..labels import AUS, au_phases
from ._corpus import AUCorpus, _object_array
from ._face import _AU_LAG, _faces
from ._latent import (_EMOTION_PROFILES, _FS, _GESTURE_SHAPES, _GESTURES, _HOP,
                      _LABEL_RATE, _PER_FRAME, EMOTIONS, LATENT_COLUMNS, _event_curve,
                      _events, _sample_times, _smooth_noise)
from ._speech import (_F1, _F3, _FRIC, _FRIC_BW, _FRIC_FC, _NASAL, _PAUSE, _VOICE, _VOWEL,
                      _render, _timeline)


def make_speech_au_corpus(n_speakers=10, recordings_per_speaker=16, sampling_rate=16000,
                          random_state=0, *, min_duration=1.0, max_duration=4.0,
                          phase_params=None):
    """Generate speech recordings and facial AU intensity curves driven by shared latents.

    A stand-in for GEMEP (licensed): actors portraying emotions, with speech and frame-wise
    intensities of the paper's 8 AUs. Each recording's audio and face are generated from
    one set of latent articulatory and affective trajectories, so the audio carries real
    but imperfect information about the AUs, and :meth:`AUCorpus.oracle` tells how much.

    **Speakers.** Half female, half male (``spk01`` f, ``spk02`` m, ...), each with an F0
    level (about 205 Hz f / 115 Hz m, ±10 %), a vocal-tract length (formants scaled by
    about 1.16 f / 1.0 m, ±3.5 %), a habitual loudness, a recording gain (-14 to -2 dB),
    a background-noise level and colour, a breathiness, a speaking rate, and per-AU facial
    gains and delays. These differences are large, so speaker normalisation matters.

    **Emotions.** :data:`EMOTIONS`, cycled over each speaker's recordings (twice each at
    the default 16 recordings). An emotion sets F0 level and pitch-accent range,
    loudness, speaking rate, voice tension (breathy ... tense) and how often each
    gesture and each face-only AU event occurs.

    **Articulation.** A recording (``min_duration`` to ``max_duration`` seconds) is a
    leading pause, phrases of CV/CVC syllables separated by pauses, and a trailing pause.
    Vowels have formant targets (a e ɛ i o u y ø; o u y ø rounded); consonants are
    voiceless and voiced plosives (closure, then a noise burst), fricatives (shaped
    noise), nasals (murmur with a nasal pole-zero pair) and approximants, with formant
    loci; formant tracks move smoothly between targets (40 ms coarticulation).

    **Gestures** (episodic rise-hold-fall events, 0-1, the trajectories ``accent``,
    ``effort``, ``smile``, ``lip``, ``disgust`` of ``latent``):

    - ``accent``: pitch accents on some syllables: F0 rise of up to 5 semitones times the
      emotion's range, +3 dB. Drive AU01/AU02 (brow raisers).
    - ``effort``: vocal effort and tension: +6 dB, tenser voice (shorter open phase,
      flatter spectrum, less aspiration), F0 +2 st, F1 +12 %. Drives AU04 (brow lowerer)
      and AU07 (lid tightener).
    - ``smile``: lip spreading: F1-F5 +10 % and F2 +10 % more (shorter effective vocal
      tract), flatter spectral tilt (brighter voice), F0 +2 st, +2 dB. Drives AU12 (lip
      corner puller) and, for strong smiles, AU06 (cheek raiser).
    - ``lip``: lip rounding and pressing (chin raising): F1 -25 %, F2 -30 %, F3 -12 %,
      -5 dB, and near the apex of a strong gesture the lips close: voicing drops to a
      nasal murmur with little high-frequency energy. 80 % occur during speech, 20 % in
      pauses (no trace in the audio). Drives AU17 (chin raiser).
    - ``disgust``: nasalisation, F0 -2 st, F1 +8 %, harsher voice (more jitter), tenser.
      Drives AU10 (nose wrinkler / upper lip raiser) and AU07.

    **Voice source and filter** (numpy/scipy only, vectorised: under 10 ms of work per
    second of audio, the default corpus of about 380 s in about 3 s): a Rosenberg
    glottal pulse train (open quotient from the tension) with jitter and pulsed
    aspiration noise, and a frication noise source; both are filtered by a time-varying
    vocal tract (5 formant resonators with speaker-scaled frequencies, nasal pole-zero
    pair, spectral tilt from breathy to tense or smiling voice, lip low-pass) applied
    per 8 ms frame by short-time Fourier filtering with overlap-add; plus
    coloured background noise and the speaker's recording gain. Synthesised at 16 kHz
    and resampled to ``sampling_rate``. Recordings are not peak-normalised (loudness
    differences stay), but one whose peak would exceed 0.99 is scaled down.

    **Faces.** Each gesture event shows in the face with an AU-specific probability
    (brow raises on 45 % (AU01) / 35 % (AU02) of accents, more in surprise and fear;
    AU04 on 75 % and AU07 on 55 % of effort events; AU12 on 95 % and AU06 on 75 % of
    strong smiles; AU10 on 85 % and AU07 on 45 % of disgust events; AU17 on 85 % of lip
    gestures), delayed by the speaker's per-AU lag (0 to 100 ms, ±30 ms per event),
    slowed (rise ×0.9-1.5, fall ×1.0-1.6) and with a peak of 5 × gesture amplitude ×
    speaker gain × event gain (0.8-5). Face-only events (0.03/s per AU plus
    emotion-specific rates, e.g. AU17 in sadness, mostly in pauses) have no trace in the
    latents. Intensity = the maximum over events of rise-apex-fall shapes, with 1.5 %
    multiplicative and a little additive resting noise, averaged to 25 Hz, clipped to
    0-5 and rounded to 2 decimals (OpenFace precision). Labels come from
    :func:`~sklearn_s2au.labels.au_phases` with ``phase_params``.

    **The oracle** (:meth:`AUCorpus.oracle`) is the leave-one-speaker-out UAR of a
    linear frame classifier on the latent trajectories with context (±2 frames, and
    summaries of the previous 0.5 s and next 0.25 s): the ceiling for models of the
    audio, below 100 % because of face-only events, gestures the face does not show,
    lags, and AU17 gestures in pauses. On the default corpus (random_state=0) it is
    59-90 % UAR (AU17: onset 81, apex 85, offset 87, occurrence 87), while a frame-wise
    linear SVM on speaker-normalised eGeMAPS or ComParE LLDs of the audio reaches about
    70 % for AU17 onset.

    Parameters
    ----------
    n_speakers : int, default=10
        Speakers, alternately female and male.
    recordings_per_speaker : int, default=16
        Recordings per speaker (equal for all speakers).
    sampling_rate : int, default=16000
        Sampling rate of the returned signals (Hz, at least 8000).
    random_state : int, numpy Generator, RandomState or None, default=0
        Makes the corpus repeatable. With an int, speaker ``k`` and its recordings do
        not depend on ``n_speakers`` or on later recordings, so a smaller corpus is a
        subset of a larger one.
    min_duration, max_duration : float, default=1.0, 4.0
        Range of recording durations in seconds (uniform).
    phase_params : dict, optional
        Keyword arguments for :func:`~sklearn_s2au.labels.au_phases` (thresholds).

    Returns
    -------
    corpus : AUCorpus
        ``X`` (columns ``signal`` float32, ``sampling_rate``, ``speaker``, ``sex``,
        ``emotion``; index ``"spk01_01"``...), ``intensity``, ``n_frames``,
        ``frame_rate`` (25), ``latent`` (one DataFrame per recording, 25 Hz, columns
        :data:`LATENT_COLUMNS`: ``pause`` fraction of the frame in a pause; ``voicing``
        and ``frication`` source amplitudes 0-1; ``f0`` Hz (the intonation contour, also
        defined in pauses); ``level_db`` intended speech level; ``f1``-``f3`` Hz;
        ``nasal`` coupling 0-1; ``tension`` -1 (breathy) to 1 (tense); the gestures
        ``accent``, ``effort``, ``smile``, ``lip``, ``disgust`` 0-1), ``phase_params``,
        and the methods ``labels``, ``labels_frame``, ``oracle`` and ``to_wav``.

    See Also
    --------
    load_manifest : the same container for your own recordings.
    sklearn_s2au.labels.au_phases : how the labels are derived.

    Examples
    --------
    >>> from sklearn_s2au.datasets import make_speech_au_corpus
    >>> corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=3)
    >>> list(corpus.X.index[:3]), list(corpus.X["emotion"][:3])
    (['spk01_01', 'spk01_02', 'spk01_03'], ['neutral', 'joy', 'anger'])
    >>> corpus.X["sex"].tolist()
    ['f', 'f', 'f', 'm', 'm', 'm']
    >>> y = corpus.labels("AU17", "offset")
    >>> len(y), y[0].dtype
    (6, dtype('uint8'))
    >>> corpus.intensity["AU17"][0].shape == y[0].shape == (corpus.n_frames[0],)
    True
    """
    for name, value, low in [("n_speakers", n_speakers, 1),
                             ("recordings_per_speaker", recordings_per_speaker, 1),
                             ("sampling_rate", sampling_rate, 8000)]:
        check_int(value, name, low)
    if not (0 < min_duration <= max_duration):
        raise ValueError(f"need 0 < min_duration <= max_duration, got {min_duration!r} "
                         f"and {max_duration!r}.")
    phase_params = dict(phase_params or {})
    au_phases(np.zeros(1), **phase_params)  # reject bad thresholds before the work
    seed = _seed(random_state)
    width = max(2, len(str(n_speakers)))
    rows, latent, intensity = [], [], {au: [] for au in AUS}
    for s in range(n_speakers):
        spk_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(s,)))
        speaker = _speaker_profile(spk_rng, s)
        speaker_id = f"spk{s + 1:0{width}d}"
        for r in range(recordings_per_speaker):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(s, r + 1)))
            emotion = EMOTIONS[r % len(EMOTIONS)]
            duration = rng.uniform(min_duration, max_duration)
            n_samples = max(1, int(round(duration * sampling_rate)))
            n_frames = frame_count(n_samples / sampling_rate, _LABEL_RATE)
            signal, lat, faces = _synthesise(rng, speaker, emotion, n_samples,
                                             sampling_rate, n_frames)
            rows.append(dict(recording=f"{speaker_id}_{r + 1:02d}", signal=signal,
                             sampling_rate=int(sampling_rate), speaker=speaker_id,
                             sex=speaker["sex"], emotion=emotion))
            latent.append(lat)
            for au in AUS:
                intensity[au].append(faces[au])
    X = pd.DataFrame(rows).set_index("recording")
    n_frames = np.array([len(c) for c in intensity[AUS[0]]], dtype=np.int64)
    return AUCorpus(
        X=X, intensity={au: _object_array(c) for au, c in intensity.items()},
        n_frames=n_frames, frame_rate=_LABEL_RATE, latent=_object_array(latent),
        phase_params=phase_params,
        DESCR=(f"Generated speech/AU corpus: {n_speakers} speakers x "
               f"{recordings_per_speaker} recordings, {sampling_rate} Hz audio, AU "
               f"intensities at {_LABEL_RATE} Hz, random_state={random_state!r}. See "
               f"sklearn_s2au.datasets.make_speech_au_corpus for the generative model."))


_seed = seed_from


def _speaker_profile(rng, index):
    female = index % 2 == 0
    expressiveness = math.exp(rng.normal(0, 0.15))
    return dict(
        sex="f" if female else "m",
        f0=(205.0 if female else 115.0) * math.exp(rng.normal(0, 0.1)),
        f0_range=math.exp(rng.normal(0, 0.2)),
        formant_scale=(1.16 if female else 1.0) * math.exp(rng.normal(0, 0.035)),
        level=rng.normal(0, 2.5),
        gain=rng.uniform(-14, -2),
        breathiness=rng.uniform(0.1, 0.5) + (0.15 if female else 0.0),
        rate=math.exp(rng.normal(0, 0.1)),
        noise=rng.uniform(-66, -50),
        noise_colour=rng.uniform(0.3, 0.95),
        face_gain={au: expressiveness * math.exp(rng.normal(0, 0.25)) for au in AUS},
        face_lag={au: _AU_LAG[au] + rng.normal(0, 0.02) for au in AUS},
    )


def _synthesise(rng, speaker, emotion, n_samples, sampling_rate, n_frames):
    """Audio, 25 Hz latent trajectories and AU intensities of one recording."""
    emo = _EMOTION_PROFILES[emotion]
    n_ctrl = n_frames * _PER_FRAME
    duration = n_samples / sampling_rate
    t_ctrl = (np.arange(n_ctrl) + 0.5) / (_FS / _HOP)

    # Articulation: segments mapped onto the control frames, then coarticulated.
    starts, ends, attrs, phrases = _timeline(rng, duration, speaker["rate"] * emo["rate"])
    seg = attrs[np.minimum(np.searchsorted(ends, t_ctrl, side="right"), len(ends) - 1)]
    formants = uniform_filter1d(seg[:, _F1:_F3 + 1], 5, axis=0, mode="nearest")
    voice = uniform_filter1d(seg[:, _VOICE], 2, mode="nearest")
    fric = seg[:, _FRIC]
    pause = seg[:, _PAUSE]
    speech_spans = np.column_stack([starts, ends])[attrs[:, _PAUSE] == 0]
    pause_spans = np.column_stack([starts, np.minimum(ends, duration)])[
        attrs[:, _PAUSE] == 1]
    phrase = np.minimum(np.searchsorted(phrases[:, 1], t_ctrl), max(len(phrases) - 1, 0))
    if len(phrases):
        p0, p1 = phrases[phrase, 0], phrases[phrase, 1]
        declination = np.clip((t_ctrl - p0) / (p1 - p0), 0, 1) * (pause == 0)
    else:
        declination = np.zeros(n_ctrl)

    # Gestures: the latent events shared by voice and face.
    speech_time = float(np.sum(speech_spans[:, 1] - speech_spans[:, 0]))
    vowel_starts = starts[attrs[:, _VOWEL] == 1]
    accented = vowel_starts[rng.random(len(vowel_starts)) < emo["accent"]]
    n_lip = rng.poisson(emo["lip"] * duration)
    in_speech = rng.random(n_lip) < 0.8
    lip_times = np.concatenate([_sample_times(rng, int(in_speech.sum()), speech_spans),
                                _sample_times(rng, int((~in_speech).sum()), pause_spans)])
    onsets = {
        "accent": accented - rng.uniform(0.02, 0.08, len(accented)),
        "effort": _sample_times(rng, rng.poisson(emo["effort"] * speech_time), speech_spans),
        "smile": rng.uniform(-0.3, max(duration - 0.2, -0.2),
                             rng.poisson(emo["smile"] * duration)),
        "lip": np.sort(lip_times),
        "disgust": _sample_times(rng, rng.poisson(emo["disgust"] * speech_time),
                                 speech_spans),
    }
    events = {g: _events(rng, onsets[g], _GESTURE_SHAPES[g]) for g in _GESTURES}
    accent, effort, smile, lip, disgust = (_event_curve(t_ctrl, events[g])
                                           for g in _GESTURES)

    # Acoustic consequences of the gestures (control rate).
    closure = np.clip((lip - 0.5) / 0.35, 0.0, 1.0)
    voice = voice * (1 - 0.65 * closure)
    fric = fric * (1 - 0.8 * closure)
    nasal = np.maximum.reduce([uniform_filter1d(seg[:, _NASAL], 3, mode="nearest"),
                               0.9 * closure, 0.6 * disgust])
    scale = speaker["formant_scale"] * (1 + 0.1 * smile)
    f1 = formants[:, 0] * scale * (1 - 0.25 * lip) * (1 + 0.12 * effort) * (1 + 0.08 * disgust)
    f2 = formants[:, 1] * scale * (1 - 0.3 * lip) * (1 + 0.1 * smile)
    f3 = formants[:, 2] * scale * (1 - 0.12 * lip)
    tension = np.clip(emo["tension"] + 0.7 * effort + 0.2 * disgust
                      - 0.5 * (speaker["breathiness"] - 0.3), -1, 1)
    level_db = (speaker["level"] + emo["level"] + 6 * effort + 3 * accent + 2 * smile
                - 5 * lip - 3 * declination)
    f0 = speaker["f0"] * 2 ** ((emo["f0"] + 5 * speaker["f0_range"] * emo["range"] * accent
                                + 2 * effort + 2 * smile - 2 * disgust - 2 * declination
                                + 0.3 * _smooth_noise(rng, n_ctrl, 25)) / 12)
    jitter = 0.006 + 0.03 * disgust

    speech = _render(rng, n_ctrl, f0=f0 * (1 + jitter * rng.standard_normal(n_ctrl)),
                     voice=voice * 10 ** (level_db / 20), fric=fric * 10 ** (level_db / 20),
                     tension=tension, breathiness=speaker["breathiness"],
                     formants=(f1, f2, f3), formant_scale=scale, nasal=nasal,
                     closure=closure, brightness=smile, fric_fc=seg[:, _FRIC_FC],
                     fric_bw=seg[:, _FRIC_BW])
    n16 = int(math.ceil(n_samples * _FS / sampling_rate))
    speech = speech[:n16]
    noise = lfilter([1 - speaker["noise_colour"]], [1, -speaker["noise_colour"]],
                    rng.standard_normal(n16))
    noise *= 10 ** (speaker["noise"] / 20) / max(np.std(noise), 1e-12)
    signal = (speech + noise) * 10 ** (speaker["gain"] / 20)
    if sampling_rate != _FS:
        g = math.gcd(int(sampling_rate), _FS)
        signal = resample_poly(signal, int(sampling_rate) // g, _FS // g)
    signal = np.pad(signal[:n_samples], (0, max(0, n_samples - len(signal))))
    peak = np.max(np.abs(signal))
    if peak > 0.99:
        signal *= 0.99 / peak

    latent = np.column_stack([pause, voice, fric, f0, level_db, f1, f2, f3, nasal, tension,
                              accent, effort, smile, lip, disgust])
    latent = latent.reshape(n_frames, _PER_FRAME, -1).mean(axis=1)
    latent = pd.DataFrame(latent, columns=list(LATENT_COLUMNS))
    latent.index.name = "frame"
    faces = _faces(rng, events, speaker, emo, duration, pause_spans, t_ctrl, n_frames)
    return signal.astype(np.float32), latent, faces
