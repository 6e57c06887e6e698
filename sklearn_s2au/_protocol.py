"""What every protocol shares: leave-one-speaker-out folds, fits in parallel, resuming.

A protocol of :mod:`sklearn_s2au.experiments` says which models, feature sets and
targets it evaluates and how one fold is fitted and scored; :func:`run_fits` runs every
fit (model × feature set × held-out speaker × group of targets) through joblib, writes
each finished one to a checkpoint folder, reads back the ones a killed run already
finished, and runs again the fits of a worker process that died.
"""

import functools
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from joblib import hash as joblib_hash

logger = logging.getLogger("sklearn_s2au.experiments")

#: Columns results are sorted by (after the order of the models), where present.
_SORT_COLUMNS = ("feature_set", "au", "phase", "fold")


def loso_folds(corpus):
    """``(speaker, train positions, test positions)`` per speaker, in corpus order."""
    speakers = corpus.X["speaker"].to_numpy(dtype=object)
    folds = [(s, np.flatnonzero(speakers != s), np.flatnonzero(speakers == s))
             for s in pd.unique(speakers)]
    if len(folds) < 2:
        raise ValueError(f"leave-one-speaker-out needs at least 2 speakers, the corpus has "
                         f"{len(folds)}.")
    return folds


def target_groups(n_targets, targets_per_fit):
    """Positions of the targets trained together in one fit, in groups of at most
    ``targets_per_fit``."""
    if not isinstance(targets_per_fit, (int, np.integer)) or targets_per_fit < 1:
        raise ValueError(f"targets_per_fit must be a positive integer, got "
                         f"{targets_per_fit!r}.")
    return [np.arange(i, min(i + targets_per_fit, n_targets))
            for i in range(0, n_targets, targets_per_fit)]


def run_fits(fit, frames, models, folds, y, target_names, groups, *, columns, max_len,
             checkpoint=None, retries=2, n_jobs=None, verbose=1):
    """Run every fit of a protocol and return its tidy results.

    Parameters
    ----------
    fit : callable
        ``fit(frames, y, target_names, train, test, estimator, max_len, meta)`` trains
        on ``train``, scores ``test`` and returns one row (dict) per target, each
        holding ``meta``. A module-level function, so that it reaches worker processes.
    frames : dict
        Feature set name -> frame table (one row per recording of the corpus).
    models : list of (dict, estimator)
        The columns that name a model (``{"architecture": ...}``) and the unfitted
        estimator.
    folds : list
        :func:`loso_folds`.
    y : list of ndarray (n_frames_i, n_targets)
    target_names : list of str
    groups : list of ndarray
        :func:`target_groups`.
    columns : list of str
        Columns of the results (and of the checkpoint files).
    max_len : int
    checkpoint, retries, n_jobs, verbose
        As in :func:`sklearn_s2au.experiments.run_protocol`.

    Returns
    -------
    results : DataFrame
        ``columns``, sorted by model (in the order given), then feature set, AU,
        sub-class and fold where these are columns.
    """
    store = None if checkpoint is None else FitStore(checkpoint)
    tasks, rows, order, n_fits = [], [], {}, 0
    for feature_set, table in frames.items():
        frames_key = None if store is None else joblib_hash(table)
        for position, (model_meta, estimator) in enumerate(models):
            for speaker, train, test in folds:
                meta = dict(model_meta, feature_set=feature_set, fold=speaker)
                for group in groups:
                    y_group = [labels[:, group] for labels in y]
                    names = [target_names[k] for k in group]
                    n_fits += 1
                    key = n_fits
                    if store is not None:
                        key = store.key(frames_key, y_group, names, train, test, estimator,
                                        max_len, meta, columns)
                        done = store.read(key)
                        if done is not None:
                            rows.extend(dict(row, _order=position) for row in done)
                            continue
                    order[key] = position
                    tasks.append(delayed(_keyed_fit)(fit, key, table, y_group, names, train,
                                                     test, estimator, max_len, meta))
    if store is not None and n_fits > len(tasks):
        logger.info("checkpoint %s: %d of %d fits already done", store.folder,
                    n_fits - len(tasks), n_fits)
    with _progress(len(tasks), verbose) as bar:  # one step per fit
        for attempt in range(retries + 1):
            finished = set()
            try:
                parallel = _fit_parallel(n_jobs)
                for key, fold_rows in parallel(tasks):
                    if store is not None:
                        store.write(key, fold_rows, columns)
                    rows.extend(dict(row, _order=order[key]) for row in fold_rows)
                    finished.add(key)
                    bar.update(1)
                break
            except _worker_errors() as exc:
                # a worker process died (killed, out of memory, a lost Dask worker): the
                # fits that finished are kept, the others run again
                tasks = [task for task in tasks if task[1][1] not in finished]
                if attempt == retries:
                    raise
                logger.warning("a worker was lost (%s: %s); retrying the %d unfinished "
                               "fit(s)", type(exc).__name__, exc, len(tasks))
    results = pd.DataFrame(rows, columns=list(columns) + ["_order"])
    keys = ["_order"] + [c for c in _SORT_COLUMNS if c in columns]
    results = results.sort_values(keys, kind="stable").drop(columns="_order")
    return results.reset_index(drop=True)


def _worker_errors():
    """Exceptions that mean a worker was lost, not that a fit failed."""
    from concurrent.futures import CancelledError
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky.process_executor import TerminatedWorkerError

    errors = [CancelledError, BrokenProcessPool, TerminatedWorkerError]
    try:
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        errors += [FutureCancelledError, KilledWorker]
    except ImportError:  # pragma: no cover - the dask extra is optional
        pass
    return tuple(errors)


def _keyed_fit(fit, key, *args):
    return key, fit(*args)


def sources_hash(root):
    """Hash of the names and contents of the ``.py`` files under ``root``."""
    root = Path(root)
    files = sorted(root.rglob("*.py"))
    return joblib_hash([(str(f.relative_to(root)), f.read_bytes()) for f in files])


@functools.lru_cache(maxsize=None)
def source_fingerprint():
    """Hash of the package's Python sources (read once per process): a fit checkpoint
    made by other code (a development tree changed without a new ``__version__``) is
    not reused."""
    return sources_hash(Path(__file__).resolve().parent)


class FitStore:
    """Finished fits of a protocol, one CSV each, named by a hash of their inputs and of
    the package's code (`source_fingerprint`)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(frames_key, y, names, train, test, estimator, max_len, meta, columns):
        params = sorted((k, repr(v)) for k, v in estimator.get_params(deep=False).items())
        from . import __version__

        # the columns tell a classification fit from an intensity fit of the same data
        return joblib_hash((__version__, source_fingerprint(), frames_key,
                            [np.asarray(a) for a in y], list(names), np.asarray(train),
                            np.asarray(test), type(estimator).__name__, params,
                            int(max_len), sorted(meta.items(), key=str), list(columns)))

    def _path(self, key):
        return self.folder / f"fit_{key}.csv"

    def read(self, key):
        path = self._path(key)
        if not path.is_file():
            return None
        # model names (architecture, encoder) and speakers stay strings
        table = pd.read_csv(path, dtype={"fold": str, "encoder": str})
        return table.to_dict("records")

    def write(self, key, rows, columns):
        atomic_write(self._path(key),
                     lambda tmp: pd.DataFrame(rows, columns=columns).to_csv(tmp, index=False))


def atomic_write(path, write):
    """``write(tmp_path)``, then rename onto ``path``: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# joblib's loky workers are reused from one Parallel call to the next, and loky takes a
# worker's reference memory after its first task. A worker whose first task was feature
# extraction grows by more than loky's threshold (300 MB) once a fit has loaded torch's
# and numba's code, so loky restarts it as "leaking", with a UserWarning ("A worker
# stopped while some jobs were given to the executor ... memory leak") in every protocol
# run. The fits therefore get workers of their own: a loky backend with another idle
# timeout than joblib's default (300 s), which loky does not reuse from the extraction.
_FIT_WORKER_TIMEOUT = 301


def _fit_parallel(n_jobs):
    """The Parallel of the fits: the active joblib backend, with fresh loky workers where
    it is joblib's default loky backend (see ``_FIT_WORKER_TIMEOUT``)."""
    try:
        from joblib.parallel import get_active_backend
    except ImportError:  # pragma: no cover - joblib without it
        return Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    backend, _ = get_active_backend()
    kwargs = getattr(backend, "backend_kwargs", None)
    if type(backend).__name__ != "LokyBackend" or kwargs is None \
            or "idle_worker_timeout" in kwargs:
        return Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    fits_backend = type(backend)(nesting_level=backend.nesting_level,
                                 inner_max_num_threads=backend.inner_max_num_threads,
                                 **kwargs, idle_worker_timeout=_FIT_WORKER_TIMEOUT)
    return Parallel(n_jobs=n_jobs, return_as="generator_unordered", backend=fits_backend)


def _progress(total, verbose):
    from tqdm.auto import tqdm

    # disable=None: no bar when the output is not a terminal (a log file stays readable)
    return tqdm(total=total, desc="fits", unit="fit", disable=None if verbose else True)
