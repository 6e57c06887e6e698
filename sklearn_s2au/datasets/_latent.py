"""What the voice and the face of a generated recording share: the latent model.

The time grid, the emotions' profiles and the gesture events (episodic rise-hold-fall
shapes) that drive both the speech synthesiser (``_speech``) and the AU curves
(``_face``).
"""

import math

import numpy as np
from scipy.ndimage import uniform_filter1d

# Emotions portrayed in the demo corpus (cycled over each speaker's recordings); the
# public ``sklearn_s2au.datasets.EMOTIONS``.
EMOTIONS = ("neutral", "joy", "anger", "sadness", "fear", "disgust", "surprise",
            "tenderness")

# Columns of each recording's latent trajectories (``AUCorpus.latent``), at 25 Hz; the
# public ``sklearn_s2au.datasets.LATENT_COLUMNS``.
LATENT_COLUMNS = ("pause", "voicing", "frication", "f0", "level_db", "f1", "f2", "f3",
                  "nasal", "tension", "accent", "effort", "smile", "lip", "disgust")

_LABEL_RATE = 25          # frames per second of the AU labels (video rate)
_FS = 16000               # internal synthesis rate (resampled to sampling_rate at the end)
_HOP = 128                # 8 ms control frames: 125 Hz, 5 per label frame
_PER_FRAME = 5

# Emotion profiles. f0: shift in semitones; range: factor on pitch-accent size; level:
# dB; rate: speaking rate factor; tension: -1 breathy .. 1 tense voice; accent:
# probability that a syllable carries a pitch accent; brow: factor on the probability
# that an accent shows as a brow raise; effort/smile/lip/disgust: gesture events per
# second; face: face-only AU events per second (no trace in the voice).
_EMOTION_PROFILES = {
    "neutral": dict(f0=0.0, range=1.0, level=0.0, rate=1.0, tension=0.0, accent=0.3,
                    brow=1.0, effort=0.05, smile=0.05, lip=0.25, disgust=0.02,
                    face={"AU17": 0.06}),
    "joy": dict(f0=3.0, range=1.4, level=4.0, rate=1.1, tension=0.2, accent=0.45,
                brow=1.2, effort=0.15, smile=0.6, lip=0.15, disgust=0.02,
                face={"AU06": 0.1, "AU12": 0.1}),
    "anger": dict(f0=2.0, range=1.3, level=8.0, rate=1.1, tension=0.8, accent=0.45,
                  brow=0.6, effort=0.7, smile=0.02, lip=0.4, disgust=0.12,
                  face={"AU04": 0.1, "AU07": 0.15, "AU17": 0.08}),
    "sadness": dict(f0=-2.0, range=0.6, level=-5.0, rate=0.8, tension=-0.6, accent=0.2,
                    brow=1.2, effort=0.05, smile=0.03, lip=0.5, disgust=0.03,
                    face={"AU01": 0.25, "AU04": 0.2, "AU17": 0.2}),
    "fear": dict(f0=4.0, range=1.2, level=1.0, rate=1.2, tension=-0.2, accent=0.4,
                 brow=1.6, effort=0.2, smile=0.02, lip=0.3, disgust=0.03,
                 face={"AU01": 0.25, "AU02": 0.15, "AU04": 0.2}),
    "disgust": dict(f0=-1.0, range=0.9, level=0.0, rate=0.9, tension=0.3, accent=0.3,
                    brow=0.8, effort=0.25, smile=0.05, lip=0.4, disgust=0.6,
                    face={"AU04": 0.15, "AU10": 0.1, "AU17": 0.1}),
    "surprise": dict(f0=4.0, range=1.7, level=3.0, rate=1.0, tension=0.0, accent=0.6,
                     brow=1.9, effort=0.1, smile=0.15, lip=0.2, disgust=0.02,
                     face={"AU02": 0.2}),
    "tenderness": dict(f0=-0.5, range=0.9, level=-3.0, rate=0.85, tension=-0.5,
                       accent=0.3, brow=1.0, effort=0.02, smile=0.4, lip=0.3,
                       disgust=0.02, face={"AU12": 0.1}),
}

_GESTURES = ("accent", "effort", "smile", "lip", "disgust")
# Gesture event shapes: uniform ranges (s) of rise, hold and fall, and of the amplitude.
_GESTURE_SHAPES = {
    "accent": ((0.06, 0.14), (0.02, 0.08), (0.10, 0.22), (0.5, 1.0)),
    "effort": ((0.10, 0.30), (0.15, 0.80), (0.15, 0.40), (0.4, 1.0)),
    "smile": ((0.15, 0.40), (0.30, 1.50), (0.20, 0.60), (0.4, 1.0)),
    "lip": ((0.06, 0.16), (0.08, 0.35), (0.10, 0.30), (0.6, 1.0)),
    "disgust": ((0.10, 0.25), (0.20, 0.80), (0.15, 0.40), (0.5, 1.0)),
}


def _sample_times(rng, n, spans):
    """``n`` times drawn uniformly from the union of the time spans ``(start, end)``."""
    if n == 0 or len(spans) == 0:
        return np.zeros(0)
    lengths = spans[:, 1] - spans[:, 0]
    where = rng.uniform(0, lengths.sum(), n)
    k = np.minimum(np.searchsorted(np.cumsum(lengths), where, side="right"), len(spans) - 1)
    return spans[k, 0] + where - np.concatenate([[0.0], np.cumsum(lengths)])[k]


def _events(rng, t0, shape):
    """Event table ``(n, 5)``: start, rise, hold, fall (s) and amplitude."""
    n = len(t0)
    (r0, r1), (h0, h1), (f0, f1), (a0, a1) = shape
    return np.column_stack([t0, rng.uniform(r0, r1, n), rng.uniform(h0, h1, n),
                            rng.uniform(f0, f1, n), rng.uniform(a0, a1, n)])


def _event_curve(t, events):
    """Maximum over events of raised-cosine rise, hold, raised-cosine fall shapes."""
    if len(events) == 0:
        return np.zeros(len(t))
    start, rise, hold, fall, amp = (events[:, k, None] for k in range(5))
    u = t[None, :] - start
    up = 0.5 - 0.5 * np.cos(np.pi * np.clip(u / rise, 0.0, 1.0))
    down = 0.5 + 0.5 * np.cos(np.pi * np.clip((u - rise - hold) / fall, 0.0, 1.0))
    return (amp * np.where(u < rise + hold, up, down)).max(axis=0)


def _smooth_noise(rng, n, width):
    """Unit-variance noise correlated over about ``width`` samples."""
    noise = uniform_filter1d(rng.standard_normal(n + 2 * width), width)[width:width + n]
    return noise * math.sqrt(width)
