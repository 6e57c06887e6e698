"""The corpus container, :class:`AUCorpus`, and its AU intensity dict."""

import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..labels import PHASES, au_name, au_phases, phase_name
from .._utils import object_array
from ._openface import _write_openface
from ._oracle import _oracle


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
        if single:
            return object_array(np.array(c, dtype=np.float64) for c in columns[0])
        return object_array(np.stack([np.asarray(c[i], dtype=np.float64) for c in columns],
                                     axis=1) for i in range(n_recordings))

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
        return object_array(s.copy() for s in sequences)

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
        y = object_array(np.stack([c[i] for c in columns], axis=1)
                         for i in range(len(self["X"])))
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
            _write_openface(folder / f"{stem}.csv", int(self["n_frames"][i]),
                            self["frame_rate"], {au: self["intensity"][au][i] for au in aus},
                            {au: occurrence[au][i] for au in aus})
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


_object_array = object_array       # the name the corpus modules import
