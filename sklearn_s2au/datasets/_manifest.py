"""Your own corpus: audio files and OpenFace CSVs listed in a manifest, :func:`load_manifest`."""

from pathlib import Path

import numpy as np
import pandas as pd

from ..framing import frame_count
from ..labels import AUS, au_name, au_phases
from ._corpus import AUCorpus, _object_array
from ._openface import _read_csv, read_openface_csv


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
