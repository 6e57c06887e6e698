"""The generated demo corpus, and loaders for your own recordings and AU annotations.

:func:`make_speech_au_corpus` synthesises speech and facial Action Unit intensity curves
that share one set of latent articulatory and affective trajectories, so the audio
carries real but imperfect information about the face. :func:`read_openface_csv` and
:func:`load_manifest` bring your own corpus (audio files + OpenFace output) into the same
:class:`AUCorpus` container, so every later step treats both alike.
"""

import math
import numbers
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import fft as sp_fft
from scipy.ndimage import uniform_filter1d
from scipy.signal import get_window, lfilter, resample_poly
from sklearn.utils import Bunch

from .framing import frame_count, to_frame_grid
from .labels import AUS, PHASES, au_name, au_phases, phase_name

__all__ = ["AUCorpus", "AUIntensity", "make_speech_au_corpus", "read_openface_csv",
           "load_manifest", "EMOTIONS", "LATENT_COLUMNS"]


#: Emotions portrayed in the demo corpus (cycled over each speaker's recordings).
EMOTIONS = ("neutral", "joy", "anger", "sadness", "fear", "disgust", "surprise",
            "tenderness")

#: Columns of each recording's latent trajectories (``AUCorpus.latent``), at 25 Hz.
LATENT_COLUMNS = ("pause", "voicing", "frication", "f0", "level_db", "f1", "f2", "f3",
                  "nasal", "tension", "accent", "effort", "smile", "lip", "disgust")

_LABEL_RATE = 25          # frames per second of the AU labels (video rate)
_FS = 16000               # internal synthesis rate (resampled to sampling_rate at the end)
_HOP = 128                # 8 ms control frames: 125 Hz, 5 per label frame
_PER_FRAME = 5
_WIN = 512                # 32 ms analysis window of the time-varying filter
_NFFT = 1024              # zero-padded so the resonators' ringing is not wrapped around
_WINDOW = get_window("hann", _WIN)
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / _FS)
_REF_LEVEL = 1.2          # amplitude of the glottal source at 0 dB level

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
_GESTURES = ("accent", "effort", "smile", "lip", "disgust")
# Gesture event shapes: uniform ranges (s) of rise, hold and fall, and of the amplitude.
_GESTURE_SHAPES = {
    "accent": ((0.06, 0.14), (0.02, 0.08), (0.10, 0.22), (0.5, 1.0)),
    "effort": ((0.10, 0.30), (0.15, 0.80), (0.15, 0.40), (0.4, 1.0)),
    "smile": ((0.15, 0.40), (0.30, 1.50), (0.20, 0.60), (0.4, 1.0)),
    "lip": ((0.06, 0.16), (0.08, 0.35), (0.10, 0.30), (0.6, 1.0)),
    "disgust": ((0.10, 0.25), (0.20, 0.80), (0.15, 0.40), (0.5, 1.0)),
}

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


# --------------------------------------------------------------------------------------
# The corpus container
# --------------------------------------------------------------------------------------

class AUIntensity(dict):
    """AU intensity curves of a corpus: a dict of AU to curves that, called, stacks AUs.

    ``corpus.intensity["AU17"]`` is the object ndarray of one float curve (0-5) per
    recording, as in a plain dict; ``corpus.intensity(aus=[...])`` gives the ``y`` of an
    intensity regressor: one ``(n_frames_i, n_aus)`` array per recording, on the
    corpus' frame grid (the grid of the labels and of ``OpenSmileLLD`` at the corpus'
    ``frame_rate``).

    Examples
    --------
    >>> from sklearn_s2au.datasets import make_speech_au_corpus
    >>> corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2)
    >>> y = corpus.intensity(aus=["AU12", "AU17"])
    >>> y[0].shape == (corpus.n_frames[0], 2)
    True
    >>> bool((y[0][:, 1] == corpus.intensity["AU17"][0]).all())
    True
    >>> corpus.intensity(aus="AU17")[0].shape == (corpus.n_frames[0],)
    True
    """

    def __call__(self, aus=None):
        """Per-recording intensity targets of several AUs (or of one).

        Parameters
        ----------
        aus : list of str or int, str or int, optional
            The AUs (``"AU17"``, ``"AU1"``, ``17``...), as columns in this order.
            Default: every AU of the corpus, in the order of its keys. A single AU (not
            in a list) gives 1-D arrays.

        Returns
        -------
        y : object ndarray of shape (n_recordings,)
            float64 arrays ``(n_frames_i, n_aus)`` (or ``(n_frames_i,)`` for a single
            AU), copies, in the order of the corpus' recordings.

        Raises
        ------
        ValueError
            If an AU is not in the corpus (the error lists the AUs it has) or ``aus``
            is empty.
        """
        single = aus is not None and (isinstance(aus, (str, numbers.Integral)))
        names = list(self) if aus is None else [self._name(a) for a in
                                                 ([aus] if single else list(aus))]
        if not names:
            raise ValueError("intensity(aus=...) needs at least one AU; pass e.g. "
                             "aus=['AU12', 'AU17'], or aus=None for all of them.")
        columns = [self[name] for name in names]
        n_recordings = len(columns[0])
        y = np.empty(n_recordings, dtype=object)
        if single:
            y[:] = [np.array(c, dtype=np.float64) for c in columns[0]]
        else:
            y[:] = [np.stack([np.asarray(c[i], dtype=np.float64) for c in columns], axis=1)
                    for i in range(n_recordings)]
        return y

    def _name(self, au):
        name = au_name(au)
        if name not in self:
            raise ValueError(f"the corpus has no intensity for {au!r}; it has "
                             f"{list(self)}.")
        return name


class AUCorpus(Bunch):
    """Recordings with AU intensity curves on a frame grid, and their phase labels.

    Returned by :func:`make_speech_au_corpus` and :func:`load_manifest`. A
    :class:`~sklearn.utils.Bunch`: every key is also an attribute.

    Attributes
    ----------
    X : DataFrame
        The recordings table, one row per recording: ``signal`` + ``sampling_rate``
        (generated corpus) or ``file`` (loaded corpus), ``speaker`` and any extra
        columns (``sex``, ``emotion``...). Pass it to ``OpenSmileLLD``.
    intensity : AUIntensity
        A dict: for each AU (``"AU01"``...), one float64 intensity curve (0-5) per
        recording, ``(n_frames_i,)``, in the order of ``X``. Called,
        ``intensity(aus=["AU12", "AU17"])`` stacks AUs into the targets of an intensity
        regressor: one ``(n_frames_i, n_aus)`` array per recording (see
        :class:`AUIntensity`).
    n_frames : ndarray of shape (n_recordings,), int64
        Frames per recording, ``frame_count(duration, frame_rate)``: the length of every
        label sequence and of the features ``OpenSmileLLD(frame_rate=frame_rate)``
        extracts.
    frame_rate : float
        Frames per second of the curves and labels (25, the video rate).
    latent : object ndarray of DataFrame or None
        Generated corpus only: each recording's latent trajectories at ``frame_rate``,
        columns :data:`LATENT_COLUMNS` (see :func:`make_speech_au_corpus`).
    phase_params : dict
        Keyword arguments of :func:`~sklearn_s2au.labels.au_phases` used for the labels.
    DESCR : str
        Description of the corpus.

    See Also
    --------
    make_speech_au_corpus, load_manifest
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if "intensity" in self:
            self["intensity"] = self["intensity"]

    def __setitem__(self, key, value):
        if key == "intensity" and not isinstance(value, AUIntensity):
            value = AUIntensity(value)
        super().__setitem__(key, value)

    def __repr__(self):
        X = self["X"]
        return (f"AUCorpus({len(X)} recordings, {X['speaker'].nunique()} speakers, "
                f"AUs {list(self['intensity'])}, frame_rate={self['frame_rate']}, "
                f"keys {list(self)})")

    def __dir__(self):
        return sorted(set(self.keys()) | {"labels", "labels_frame", "oracle", "to_wav"})

    def _cache(self):
        # Kept outside the dict so it is not a key; Bunch ignores __dict__ when
        # unpickled, so it is rebuilt on demand.
        return self.__dict__.setdefault("_computed", {})

    def _au(self, au):
        return self["intensity"]._name(au)

    def _phases(self, au):
        cache = self._cache()
        if au not in cache:
            curves = list(self["intensity"][au])
            cache[au] = au_phases(curves, **self["phase_params"])
        return cache[au]

    def labels(self, au, phase):
        """One 0/1 label sequence per recording for one AU sub-class.

        Parameters
        ----------
        au : str or int
            The AU: ``"AU17"``, ``"AU1"``, ``17``...
        phase : {"onset", "apex", "offset", "occurrence"}

        Returns
        -------
        y : object ndarray of shape (n_recordings,)
            ``uint8`` arrays ``(n_frames_i,)``, in the order of ``X``: the ``y`` of a
            Pipeline.

        Examples
        --------
        >>> from sklearn_s2au.datasets import make_speech_au_corpus
        >>> corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2)
        >>> y = corpus.labels("AU17", "onset")
        >>> len(y) == len(corpus.X), len(y[0]) == int(corpus.n_frames[0])
        (True, True)
        """
        sequences = self._phases(self._au(au))[phase_name(phase)]
        y = np.empty(len(sequences), dtype=object)
        y[:] = [s.copy() for s in sequences]
        return y

    def labels_frame(self, aus=None, phases=None):
        """Several AU sub-classes at once, one ``(n_frames_i, n_targets)`` array each.

        Parameters
        ----------
        aus : list of str or int, optional
            AUs to include (default: all AUs of the corpus).
        phases : list of str, optional
            Sub-classes to include (default: :data:`~sklearn_s2au.labels.PHASES`).

        Returns
        -------
        bunch : Bunch
            ``y``: object ndarray of ``n_recordings`` ``uint8`` arrays
            ``(n_frames_i, n_targets)``; ``target_names``: ``"AU01_onset"``... in
            AU-major order (all sub-classes of the first AU, then the next AU).

        Examples
        --------
        >>> from sklearn_s2au.datasets import make_speech_au_corpus
        >>> corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2)
        >>> b = corpus.labels_frame(aus=["AU17"], phases=["onset", "apex"])
        >>> b.target_names, b.y[0].shape[1]
        (['AU17_onset', 'AU17_apex'], 2)
        """
        aus = list(self["intensity"]) if aus is None else [self._au(a) for a in aus]
        phases = list(PHASES) if phases is None else [phase_name(p) for p in phases]
        if not aus or not phases:
            raise ValueError("labels_frame needs at least one AU and one sub-class.")
        columns = [self._phases(au)[phase] for au in aus for phase in phases]
        y = np.empty(len(self["X"]), dtype=object)
        y[:] = [np.stack([c[i] for c in columns], axis=1) for i in range(len(y))]
        return Bunch(y=y, target_names=[f"{au}_{phase}" for au in aus for phase in phases])

    def oracle(self, aus=None, phases=None, *, context=2):
        """Leave-one-speaker-out UAR of a frame classifier that sees the latent trajectories.

        The ceiling for anything that learns from the audio: the latent trajectories
        drive the audio, and the AU curves follow them with lags, gains and face-only
        events, so an audio model should not beat these numbers by more than noise.
        A linear frame classifier per held-out speaker (a
        :class:`~sklearn.linear_model.Ridge` least-squares fit of all targets at once,
        thresholded at each target's training prior, which weighs both classes equally
        like balanced class weights; it matches a balanced logistic regression within
        about a point here, at a fraction of the time) on the latent trajectories
        z-scored per speaker: their values over ``context`` frames on either side, plus
        the maximum and mean over the 12 previous frames and the maximum over the 6 next
        frames (faces lag and outlast the gestures). A sub-class's UAR is the mean over the
        held-out speakers (as in the paper), skipping a speaker whose frames are all of
        one class. Results are cached on the corpus.

        Parameters
        ----------
        aus : list of str, optional
            Default: all AUs of the corpus.
        phases : list of str, optional
            Default: all four sub-classes.
        context : int, default=2
            Frames of context on each side (2: 5 frames = 0.2 s).

        Returns
        -------
        uar : DataFrame
            UAR (0-1), index: AU, columns: sub-class.

        Examples
        --------
        >>> from sklearn_s2au.datasets import make_speech_au_corpus
        >>> corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=4)
        >>> table = corpus.oracle(aus=["AU17"], phases=["offset"])
        >>> table.shape
        (1, 1)
        """
        if self.get("latent") is None:
            raise ValueError("this corpus has no latent trajectories (it was loaded from "
                             "files); the oracle exists for the generated corpus only.")
        aus = list(self["intensity"]) if aus is None else [self._au(a) for a in aus]
        phases = list(PHASES) if phases is None else [phase_name(p) for p in phases]
        key = ("oracle", tuple(aus), tuple(phases), int(context))
        cache = self._cache()
        if key not in cache:
            cache[key] = _oracle(self, aus, phases, int(context))
        return cache[key].copy()

    def to_wav(self, folder):
        """Write the corpus as audio files, OpenFace-style AU CSVs and a manifest.

        Each recording becomes ``<folder>/<recording>.wav`` (16-bit PCM) and
        ``<folder>/<recording>.csv`` with OpenFace 2.x columns (``frame``,
        ``face_id``, ``timestamp``, ``confidence``, ``success``, ``AUxx_r`` intensities
        with two decimals as OpenFace writes them, ``AUxx_c`` occurrence), one row per
        label frame. ``manifest.csv`` lists ``file``, ``speaker``, ``au_file`` (paths
        relative to the folder) and the other scalar columns of ``X``.
        :func:`load_manifest` reads it back with the same labels.

        Parameters
        ----------
        folder : str or Path
            Created if missing.

        Returns
        -------
        manifest : Path
            Path of ``manifest.csv``.
        """
        import audiofile

        X = self["X"]
        if "signal" not in X.columns:
            raise ValueError("to_wav writes generated signals, but X has no 'signal' "
                             "column; this corpus is already on disk (see X['file']).")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        aus = list(self["intensity"])
        occurrence = {au: self._phases(au)["occurrence"] for au in aus}
        extra = [c for c in X.columns if c not in ("signal", "sampling_rate", "speaker")
                 and X[c].map(np.isscalar).all()]
        rows, used = [], set()
        for i, (name, rec) in enumerate(X.iterrows()):
            stem = _safe_stem(name, i)
            stem = stem if stem not in used else f"{stem}_{i}"   # names equal once cleaned
            used.add(stem)
            audiofile.write(str(folder / f"{stem}.wav"), np.asarray(rec["signal"]),
                            int(rec["sampling_rate"]))
            n = int(self["n_frames"][i])
            table = pd.DataFrame({"frame": np.arange(1, n + 1), "face_id": 0,
                                  "timestamp": np.arange(n) / self["frame_rate"],
                                  "confidence": 0.98, "success": 1})
            for au in aus:
                table[f"{au}_r"] = self["intensity"][au][i]
            for au in aus:
                table[f"{au}_c"] = occurrence[au][i].astype(int)
            _write_openface(table, folder / f"{stem}.csv")
            row = {"file": f"{stem}.wav", "speaker": rec["speaker"],
                   "au_file": f"{stem}.csv", "recording": name}
            row.update({c: rec[c] for c in extra})
            rows.append(row)
        manifest = folder / "manifest.csv"
        pd.DataFrame(rows).to_csv(manifest, index=False)
        return manifest


def _safe_stem(name, i):
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
    return stem or f"recording_{i}"


def _write_openface(table, path):
    """OpenFace 2.x CSV layout: ', '-separated header and values, 2-decimal AUs."""
    formats = {"frame": "{:d}", "face_id": "{:d}", "timestamp": "{:.3f}",
               "confidence": "{:.2f}", "success": "{:d}"}
    columns = []
    for col in table.columns:
        fmt = formats.get(col, "{:d}" if col.endswith("_c") else "{:.2f}")
        columns.append([fmt.format(v) for v in table[col].tolist()])
    lines = [", ".join(table.columns)]
    lines += [", ".join(values) for values in zip(*columns)]
    Path(path).write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------

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
        if not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
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


def _object_array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _seed(random_state):
    """An integer seed from the usual sklearn random_state values."""
    if random_state is None:
        return np.random.SeedSequence().entropy
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or a "
                     f"RandomState, got {random_state!r}.")


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
    spectrum = spectra[0] * (zeros / tract * _NASAL_POLE) * shape
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


_NASAL_POLE_GAIN, _NASAL_POLE = _polynomial(np.array([[270.0]]), np.array([150.0]))
_NASAL_POLE = (_NASAL_POLE_GAIN[0] / _NASAL_POLE[0]).astype(np.complex64)
_LOG_TILT = np.log1p((_FREQS / 1000.0) ** 2)
_LOG_LIP = np.log1p((_FREQS / 800.0) ** 2)


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


# --------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------

def _oracle_features(latent, speakers, context, history=12, lookahead=6):
    """Per-frame oracle inputs from the latent trajectories of all recordings.

    The trajectories are z-scored per speaker; each frame gets the values at
    ``-context .. +context`` frames, and the maximum and mean over the ``history``
    previous frames and the maximum over the ``lookahead`` next frames (the face lags and
    outlasts the gestures: an offset follows a gesture that has already ended). Frames
    beyond a recording's ends repeat its first or last frame.
    """
    frames = [np.asarray(df, dtype=float) for df in latent]
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    values = np.concatenate(frames)
    owner = np.repeat(np.asarray(speakers, dtype=object), lengths)
    for speaker in pd.unique(owner):
        rows = owner == speaker
        block = values[rows]
        values[rows] = (block - block.mean(axis=0)) / np.maximum(block.std(axis=0), 1e-9)
    ends = np.cumsum(lengths)
    first = np.repeat(ends - lengths, lengths)
    last = np.repeat(ends - 1, lengths)
    index = np.arange(len(values))

    def shifted(k):
        return values[np.clip(index + k, first, last)]

    past = np.stack([shifted(-k) for k in range(1, history + 1)])
    ahead = np.stack([shifted(k) for k in range(1, lookahead + 1)])
    columns = [shifted(k) for k in range(-context, context + 1)]
    columns += [past.max(axis=0), past.mean(axis=0), ahead.max(axis=0)]
    return np.hstack(columns), lengths


def _oracle_fold(features, targets, train, test):
    """UAR of every target on one held-out speaker (NaN where it has only one class)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import balanced_accuracy_score

    model = Ridge(alpha=100.0).fit(features[train], targets[train])
    # A least-squares fit of 0/1 targets averages to the class prior; thresholding at
    # the training prior weighs both classes equally, like balanced class weights.
    scores = model.predict(features[test]).reshape(len(test), -1)
    predicted = scores > targets[train].mean(axis=0)
    return [balanced_accuracy_score(targets[test, k], predicted[:, k])
            if len(np.unique(targets[test, k])) == 2 else np.nan
            for k in range(targets.shape[1])]


def _oracle(corpus, aus, phases, context):
    speakers = corpus["X"]["speaker"].to_numpy(dtype=object)
    folds = pd.unique(speakers)
    if len(folds) < 2:
        raise ValueError("the oracle is leave-one-speaker-out and needs at least 2 "
                         "speakers.")
    features, lengths = _oracle_features(corpus["latent"], speakers, context)
    targets = np.concatenate(list(corpus.labels_frame(aus=aus, phases=phases).y))
    frame_speaker = np.repeat(speakers, lengths)
    results = [_oracle_fold(features, targets, np.flatnonzero(frame_speaker != s),
                            np.flatnonzero(frame_speaker == s)) for s in folds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a target absent from every fold
        uar = np.nanmean(np.array(results, dtype=float), axis=0)
    return pd.DataFrame(uar.reshape(len(aus), len(phases)), index=pd.Index(aus, name="au"),
                        columns=pd.Index(phases, name="phase"))


# --------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------

def _read_csv(path, **kwargs):
    """:func:`pandas.read_csv`, with an error naming the file when it is not CSV text.

    The loaders read CSV text only: nothing a user gives them is ever unpickled or
    evaluated, so a binary file (a pickle or an audio file renamed ``.csv``) is an error.
    """
    name = str(path) if isinstance(path, (str, Path)) else getattr(path, "name", path)
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{name}: not a CSV text file (byte {exc.start} is {exc.object[exc.start:][:1]!r}, "
            f"which is not UTF-8 text); give the CSV file itself. The loaders read CSV "
            f"only and never unpickle or evaluate a file.") from exc
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{name}: the file is empty; expected a CSV with a header "
                         f"row.") from exc
    except pd.errors.ParserError as exc:
        raise ValueError(f"{name}: cannot be parsed as CSV ({exc}).") from exc


def read_openface_csv(path, frame_rate=25, n_frames=None, aus=None, *, tolerance=0.25):
    """AU intensities from an OpenFace 2.x FeatureExtraction CSV, on the frame grid.

    OpenFace writes column names with a leading space (``" AU01_r"``); they are
    stripped. Only the ``AUxx_r`` intensity columns (0-5) are kept. Rows with
    ``success == 0`` (no face found) are treated as missing: they are left out before
    the values are brought onto the grid, so their frames are filled by linear
    interpolation between the nearest successful frames (and with the nearest one at the
    ends). The rows are placed by their ``timestamp`` and averaged per frame with
    :func:`sklearn_s2au.framing.to_frame_grid`, so any video frame rate works.

    Parameters
    ----------
    path : str or Path
        The CSV (read with :func:`pandas.read_csv`).
    frame_rate : float, default=25
        Frames per second of the grid.
    n_frames : int, optional
        Length of the grid, normally ``frame_count(audio duration, frame_rate)`` so the
        AUs line up with the audio features. By default
        ``frame_count(last timestamp + 1 / video fps, frame_rate)``, with the video fps
        estimated from the median timestamp step.
    aus : list of str or int, optional
        AUs to return (``"AU17"``, ``17``...); by default every ``AUxx_r`` column.
    tolerance : float, default=0.25
        When ``n_frames`` is given: how many seconds the CSV may be longer or shorter
        than the grid. Rows after the end of the grid (within the tolerance) are left
        out; a shorter CSV is extended with its last values. A larger mismatch is an
        error (wrong video for this audio?).

    Returns
    -------
    intensity : DataFrame of shape (n_frames, n_aus)
        Columns ``"AU01"``..., index ``frame`` (0-based).

    Examples
    --------
    >>> import io
    >>> from sklearn_s2au.datasets import read_openface_csv
    >>> text = ("frame, face_id, timestamp, confidence, success, AU17_r\\n"
    ...         "1, 0, 0.000, 0.98, 1, 0.5\\n2, 0, 0.040, 0.10, 0, 0.0\\n"
    ...         "3, 0, 0.080, 0.98, 1, 1.5\\n")
    >>> read_openface_csv(io.StringIO(text))["AU17"].tolist()
    [0.5, 1.0, 1.5]
    """
    name = getattr(path, "name", path)
    table = _read_csv(path, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    if "timestamp" not in table.columns:
        raise ValueError(f"{name}: no 'timestamp' column (columns: {list(table.columns)[:8]}"
                         f"...); is this OpenFace FeatureExtraction output?")
    available = {au_name(c): c for c in table.columns
                 if c.endswith("_r") and c.upper().startswith("AU")}
    if aus is None:
        wanted = list(available)
    else:
        wanted = [au_name(a) for a in aus]
        missing = [a for a in wanted if a not in available]
        if missing:
            raise ValueError(f"{name}: no intensity column for {missing} (expected "
                             f"{[a + '_r' for a in missing]}); it has "
                             f"{[available[a] for a in available]}. Pass aus= with the "
                             f"AUs it has.")
    if not wanted:
        raise ValueError(f"{name}: no AU intensity columns (AUxx_r) found.")
    if len(table) == 0:
        raise ValueError(f"{name}: the CSV has no rows.")
    if "face_id" in table.columns and table["face_id"].nunique() > 1:
        raise ValueError(f"{name}: rows of {table['face_id'].nunique()} faces (face_id); "
                         f"keep the rows of the speaker's face before reading.")
    times = table["timestamp"].to_numpy(dtype=float)
    values = table[[available[a] for a in wanted]].to_numpy(dtype=float)
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise ValueError(f"{name}: timestamps must be finite and increasing.")
    repeated = np.flatnonzero(np.diff(times) == 0)
    if repeated.size:
        raise ValueError(f"{name}: timestamp {times[repeated[0]]:g} s appears more than once "
                         f"(rows {repeated[0]} and {repeated[0] + 1}, 0-based, and "
                         f"{repeated.size - 1} more); each video frame must have one row "
                         f"(several faces? keep one face_id).")
    finite = np.isfinite(values)
    outside = finite & ((values < 0) | (values > 5))
    if outside.any():
        row, col = map(int, np.argwhere(outside)[0])
        raise ValueError(f"{name}: {available[wanted[col]]} is {values[row, col]:g} at row "
                         f"{row} (timestamp {times[row]:g} s); OpenFace AU intensities lie "
                         f"in 0..5 ({int(outside.sum())} value(s) outside). Is this column "
                         f"an intensity?")
    ok = np.ones(len(table), dtype=bool)
    if "success" in table.columns:
        ok = table["success"].to_numpy() != 0
    ok &= np.isfinite(values).all(axis=1)
    if not ok.any():
        raise ValueError(f"{name}: no row with success=1 and finite AU values; OpenFace "
                         f"found no face in this video.")
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / frame_rate
    csv_duration = times[-1] + step
    if n_frames is None:
        n_frames = frame_count(csv_duration, frame_rate)
    else:
        grid_duration = n_frames / frame_rate
        if abs(csv_duration - grid_duration) > tolerance:
            raise ValueError(
                f"{name}: the AU track lasts {csv_duration:.3f} s but the recording "
                f"{grid_duration:.3f} s ({n_frames} frames at {frame_rate} Hz); they differ "
                f"by more than tolerance={tolerance} s. Check that the CSV belongs to this "
                f"recording, or raise tolerance.")
        ok &= times < grid_duration
        if not ok.any():
            raise ValueError(f"{name}: no successful row within the {grid_duration:.3f} s "
                             f"of the recording.")
    grid = to_frame_grid(times[ok], values[ok], n_frames, frame_rate)
    return pd.DataFrame(grid, columns=wanted, index=pd.RangeIndex(n_frames, name="frame"))


def load_manifest(path, frame_rate=25, *, aus=None, phase_params=None, tolerance=0.25):
    """Your own corpus: audio files and OpenFace AU CSVs listed in a manifest CSV.

    Parameters
    ----------
    path : str or Path
        A CSV with the columns ``file`` (audio, any format audiofile reads),
        ``speaker`` and ``au_file`` (OpenFace 2.x FeatureExtraction CSV of the same
        recording); further columns (emotion, sentence...) are passed through to ``X``.
        Relative paths are resolved against the manifest's folder.
    frame_rate : float, default=25
        Frame rate of the labels; use the same in ``OpenSmileLLD``.
    aus : list of str or int, or "all", optional
        AUs to read (default: the paper's 8, :data:`~sklearn_s2au.labels.AUS`). "all"
        reads every ``AUxx_r`` intensity column of the first recording's CSV (OpenFace
        2.x writes 17), which every other CSV must have as well.
    phase_params : dict, optional
        Keyword arguments for :func:`~sklearn_s2au.labels.au_phases`.
    tolerance : float, default=0.25
        Seconds by which an AU track may differ in length from its audio (see
        :func:`read_openface_csv`).

    Returns
    -------
    corpus : AUCorpus
        ``X`` (the manifest with ``file`` and ``au_file`` as absolute paths),
        ``intensity`` (the ``AUxx_r`` columns) resampled to
        ``frame_count(audio duration, frame_rate)`` frames per recording, ``n_frames``,
        ``frame_rate``, ``latent=None``, and ``labels`` / ``labels_frame`` exactly as
        for :func:`make_speech_au_corpus`. The intensity targets of a regressor are
        ``corpus.intensity(aus=[...])``, on the same grid as the audio features.

    Raises
    ------
    ValueError
        A required column is missing, a speaker is empty, a file does not exist (the
        error names the manifest row), or an AU track does not match its audio.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_s2au.datasets import load_manifest, make_speech_au_corpus
    >>> corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     loaded = load_manifest(corpus.to_wav(folder))
    ...     same = all((a == b).all() for a, b in zip(loaded.labels("AU17", "apex"),
    ...                                                corpus.labels("AU17", "apex")))
    >>> same
    True
    """
    import audiofile

    path = Path(path)
    manifest = _read_csv(path)
    required = ["file", "speaker", "au_file"]
    missing = [c for c in required if c not in manifest.columns]
    if missing:
        raise ValueError(f"{path}: the manifest lacks the column(s) {missing} (it has "
                         f"{list(manifest.columns)}); it needs {required}.")
    if len(manifest) == 0:
        raise ValueError(f"{path}: the manifest lists no recordings.")
    empty = manifest["speaker"].isna() | (manifest["speaker"].astype(str).str.strip() == "")
    if empty.any():
        rows = [int(i) for i in np.flatnonzero(empty.to_numpy())]
        raise ValueError(f"{path}: row(s) {rows} (0-based, excluding the header) have no "
                         f"speaker; every recording needs one for leave-one-speaker-out.")
    for column in ("file", "au_file"):
        twice = manifest[column].astype(str).str.strip().duplicated(keep=False).to_numpy()
        if twice.any():
            rows = [int(i) for i in np.flatnonzero(twice)]
            raise ValueError(f"{path}: {column} {str(manifest[column].iloc[rows[0]]).strip()!r}"
                             f" is listed in rows {rows} (0-based, excluding the header); "
                             f"each recording must appear once, or it would be counted "
                             f"twice.")
    every_au = isinstance(aus, str) and aus == "all"
    if not every_au:
        aus = list(AUS) if aus is None else [au_name(a) for a in aus]
    phase_params = dict(phase_params or {})
    au_phases(np.zeros(1), **phase_params)
    X = manifest.copy()
    for column in ("file", "au_file"):
        resolved = []
        for i, value in enumerate(manifest[column]):
            if pd.isna(value) or not str(value).strip():
                raise ValueError(f"{path}: row {i} has an empty {column!r}.")
            target = Path(str(value).strip())
            target = target if target.is_absolute() else path.parent / target
            if not target.is_file():
                raise ValueError(f"{path}: row {i} (speaker {manifest['speaker'].iloc[i]!r})"
                                 f": {column} {str(value)!r} does not exist ({target}).")
            resolved.append(str(target.resolve()))
        X[column] = resolved
    if every_au:
        header = _read_csv(X["au_file"].iloc[0], skipinitialspace=True, nrows=0).columns
        aus = [au_name(c.strip()) for c in header
               if c.strip().endswith("_r") and c.strip().upper().startswith("AU")]
        if not aus:
            raise ValueError(f"{path}: row 0: {X['au_file'].iloc[0]} has no AU intensity "
                             f"column (AUxx_r); is it OpenFace FeatureExtraction output?")
    n_frames = np.array([frame_count(audiofile.duration(f), frame_rate) for f in X["file"]],
                        dtype=np.int64)
    intensity = {au: [] for au in aus}
    for i, (au_file, n) in enumerate(zip(X["au_file"], n_frames)):
        try:
            table = read_openface_csv(au_file, frame_rate, int(n), aus, tolerance=tolerance)
        except ValueError as exc:
            raise ValueError(f"{path}: row {i}: {exc}") from exc
        for au in aus:
            intensity[au].append(table[au].to_numpy())
    return AUCorpus(X=X, intensity={au: _object_array(c) for au, c in intensity.items()},
                    n_frames=n_frames, frame_rate=frame_rate, latent=None,
                    phase_params=phase_params,
                    DESCR=f"Corpus loaded from {path} ({len(X)} recordings).")
