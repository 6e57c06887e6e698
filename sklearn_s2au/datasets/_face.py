"""The face: AU intensity curves from the latent gesture events plus face-only events."""

import numpy as np

from ..labels import AUS
from ._latent import _GESTURES, _PER_FRAME, _event_curve, _sample_times, _smooth_noise

_FACE_BASE_RATE = 0.03    # face-only events per second of every AU, in every emotion

# Which gesture drives which AU, and the probability that a gesture event shows in the
# face. Events of one gesture share one random draw, so AU02 events are mostly also AU01
# events and AU06 mostly accompanies AU12, as in real faces.
_AU_DRIVERS = {
    "AU01": [("accent", 0.45)], "AU02": [("accent", 0.35)], "AU04": [("effort", 0.75)],
    "AU06": [("smile", 0.75)], "AU07": [("effort", 0.55), ("disgust", 0.45)],
    "AU10": [("disgust", 0.85)], "AU12": [("smile", 0.95)], "AU17": [("lip", 0.85)],
}
# Mean delay (s) of the face behind the gesture that drives it.
_AU_LAG = {"AU01": 0.0, "AU02": 0.02, "AU04": 0.06, "AU06": 0.10, "AU07": 0.08,
           "AU10": 0.06, "AU12": 0.06, "AU17": 0.06}


def _faces(rng, events, speaker, emo, duration, pause_spans, t_ctrl, n_frames):
    """AU intensity curves (25 Hz, 0-5) from the gesture events plus face-only events."""
    draws = {g: rng.random(len(events[g])) for g in _GESTURES}
    faces = {}
    for au in AUS:
        tables = []
        for gesture, p in _AU_DRIVERS[au]:
            ev = events[gesture]
            if au in ("AU01", "AU02"):
                p = min(0.95, p * emo["brow"])
            keep = draws[gesture] < p
            if au == "AU06":
                keep &= ev[:, 4] > 0.5
            ev = ev[keep]
            k = len(ev)
            extra_hold = 0.15 if gesture == "accent" else 0.0
            tables.append(np.column_stack([
                ev[:, 0] + speaker["face_lag"][au] + rng.normal(0, 0.03, k),
                ev[:, 1] * rng.uniform(0.9, 1.5, k) + 0.04,
                ev[:, 2] * rng.uniform(0.8, 1.3, k) + rng.uniform(0, 0.12 + extra_hold, k),
                ev[:, 3] * rng.uniform(1.0, 1.6, k) + 0.06,
                5 * ev[:, 4] * speaker["face_gain"][au] * rng.lognormal(0, 0.2, k)]))
        rate = _FACE_BASE_RATE + emo["face"].get(au, 0.0)
        n_free = rng.poisson(rate * duration)
        if au == "AU17":
            in_pause = rng.random(n_free) < 0.7
            start = np.concatenate([
                _sample_times(rng, int(in_pause.sum()), pause_spans) - 0.1,
                rng.uniform(-0.2, duration, int((~in_pause).sum()))])
        else:
            start = rng.uniform(-0.2, duration, n_free)
        tables.append(np.column_stack([
            start, rng.uniform(0.1, 0.3, n_free), rng.uniform(0.1, 0.6, n_free),
            rng.uniform(0.15, 0.4, n_free),
            5 * rng.uniform(0.3, 0.8, n_free) * speaker["face_gain"][au]]))
        table = np.concatenate(tables)
        table[:, 4] = np.clip(table[:, 4], 0.8, 5.0)
        curve = _event_curve(t_ctrl, table)
        n = len(t_ctrl)
        curve = (curve * (1 + 0.015 * _smooth_noise(rng, n, 12))
                 + 0.06 * np.abs(_smooth_noise(rng, n, 12)))
        curve = curve.reshape(n_frames, _PER_FRAME).mean(axis=1)
        faces[au] = np.round(np.clip(curve, 0.0, 5.0), 2)
    return faces
