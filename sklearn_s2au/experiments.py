"""The paper's experiment protocols (Table I and Table II) as functions.

Both series are leave-one-speaker-out (LOSO) cross-validations scored with UAR on the
real frames of the held-out speaker. Features are extracted once per recording (and
cached on disk with :class:`joblib.Memory` when ``memory`` is given); speaker
normalisation, padding, training and early stopping happen inside each fold on the
training speakers only. All targets of one fold are trained in one vectorised pass of
independent models (``multi_target="independent"``), numerically one model per target as
in the paper. Folds run in parallel through joblib, so ``joblib.parallel_backend("dask")``
scales them out to a cluster.
"""

import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Memory, Parallel, delayed
from joblib import hash as joblib_hash
from sklearn.base import clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.pipeline import Pipeline

from .baselines import FrameClassifier
from .classifiers import TABLE1_CONFIGS, paper_settings
from .features import OpenSmileLLD
from .labels import AUS, PHASES
from .metrics import sequence_uar
from .preprocessing import SequencePadder, SpeakerNormaliser

__all__ = [
    "extract_features", "run_protocol", "table1", "table2", "paper_table",
    "PAPER_TABLE1", "PAPER_TABLE2", "SVM_NAME", "demo", "write_results", "to_markdown", "DEMO_EPOCHS",
]

logger = logging.getLogger(__name__)

SVM_NAME = "SVM (Ringeval 2015)"
#: Columns of the tidy results, one row per fit, target and fold.
_RESULT_COLUMNS = ["architecture", "feature_set", "au", "phase", "fold", "uar", "classes",
                  "epochs", "seconds"]
FEATURE_SETS = ("ComParE_2016", "eGeMAPSv02")

#: Table I of the paper: AU17, ComParE, UAR % (GEMEP corpus, not the demo corpus).
PAPER_TABLE1 = pd.DataFrame(
    [[75.8, 73.1, 80.2, 75.4], [62.9, 62.1, 66.8, 61.9], [79.1, 70.3, 74.9, 70.2],
     [76.9, 76.3, 80.7, 65.7], [75.7, 72.8, 75.4, 76.6], [77.0, 76.8, 83.3, 73.8],
     [80.5, 77.6, 89.2, 73.3], [76.2, 76.4, 83.9, 71.1]],
    index=["Stacked-NoAtt", "Stacked-IntraAtt bi=5", "Stacked-IntraAtt bi=15",
           "2xStacked-IntraAtt pa=15", "2xStacked-IntraAtt bi=15", "Enc-Dec-NoAtt",
           "Enc-InterAtt-Dec", "Enc-InterAtt-Dec-IntraAtt pa=15"],
    columns=list(PHASES))

#: Table II averages over the 8 AUs, Enc-InterAtt-Dec, UAR % (GEMEP corpus).
PAPER_TABLE2 = pd.DataFrame([[63.9, 66.2, 79.7, 65.3], [65.9, 67.8, 77.8, 62.2]],
                            index=["ComParE_2016", "eGeMAPSv02"], columns=list(PHASES))


def _extract(X, feature_set, frame_rate, n_jobs):
    return OpenSmileLLD(feature_set, frame_rate=frame_rate, n_jobs=n_jobs).fit_transform(X)


def extract_features(X, feature_set="ComParE_2016", *, frame_rate=25, memory=None,
                     n_jobs=None):
    """Frame table of one feature set for all recordings, cached when ``memory`` is set.

    Extraction is per recording and uses no labels or other recordings, so extracting
    once for the whole corpus and then selecting folds leaks nothing between speakers.

    Parameters
    ----------
    X : DataFrame
        Recordings table.
    feature_set : {"ComParE_2016", "eGeMAPSv02"}
    frame_rate : float, default=25
    memory : str, Path, joblib.Memory or None
        Cache folder (or Memory) for the extracted features.
    n_jobs : int or None
        Parallel extraction over recordings.

    Returns
    -------
    frames : DataFrame
        The frame table (``speaker`` and ``features`` columns, same index as ``X``).
    """
    if memory is None:
        return _extract(X, feature_set, frame_rate, n_jobs)
    if not isinstance(memory, Memory):
        memory = Memory(str(memory), verbose=0)
    return memory.cache(_extract, ignore=["n_jobs"])(X, feature_set, frame_rate, n_jobs)


def _stack_targets(corpus, aus, phases):
    """Per-recording (n_frames, K) label arrays and their names, AU-major."""
    bunch = corpus.labels_frame(aus=list(aus), phases=list(phases))
    return bunch.y, list(bunch.target_names)


#: The networks' training settings a protocol takes: the package's defaults or the
#: paper's (:func:`~sklearn_s2au.classifiers.paper_settings`).
SETTINGS = ("default", "paper")


def _network(architecture, max_epochs, random_state, params, settings="default"):
    cls, config = TABLE1_CONFIGS[architecture]
    kwargs = paper_settings(cls) if settings == "paper" else {}
    kwargs.update(config)
    kwargs.update(multi_target="independent", random_state=random_state, verbose=0)
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    kwargs.update(params or {})
    return cls(**kwargs)


def _svm(random_state, params):
    from sklearn.svm import LinearSVC

    params = dict(params or {})
    estimator = params.pop("estimator", None) or LinearSVC(class_weight="balanced")
    return FrameClassifier(estimator, random_state=random_state, **params)


def _fit_fold(frames, y, target_names, train, test, estimator, max_len, meta):
    """Train on the training speakers of one fold, score the held-out speaker."""
    start = time.perf_counter()
    steps = [("norm", SpeakerNormaliser())]
    if not isinstance(estimator, FrameClassifier):
        steps.append(("pad", SequencePadder(max_len=max_len)))
    pipe = Pipeline(steps + [("clf", clone(estimator))])
    y_train = [y[i] for i in train]
    pipe.fit(frames.iloc[train], y_train)
    y_pred = pipe.predict(frames.iloc[test])
    seconds = time.perf_counter() - start
    y_test = [y[i] for i in test]
    with warnings.catch_warnings():
        # recorded in the "classes" column instead, and left out by paper_table
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        per_target = sequence_uar(y_test, y_pred, targets=target_names,
                                  return_per_target=True)
    classes = [len(np.unique(c)) for c in np.concatenate(y_test, axis=0).T]
    epochs = _selected_epochs(pipe[-1], len(target_names))
    rows = []
    for k, name in enumerate(target_names):
        au, phase = name.rsplit("_", 1)
        rows.append(dict(meta, au=au, phase=phase, uar=float(per_target[name]),
                         classes=classes[k], epochs=epochs[k],
                         seconds=seconds / len(target_names)))
    return rows


def _selected_epochs(clf, n_targets):
    epochs = getattr(clf, "selected_epochs_", None)
    if epochs is None:
        return [np.nan] * n_targets
    return [int(e) for e in np.broadcast_to(np.asarray(epochs), (n_targets,))]


def run_protocol(corpus, *, architectures=("Enc-InterAtt-Dec",), feature_sets=FEATURE_SETS,
                 aus=AUS, phases=PHASES, svm=True, max_epochs=None, max_len=100,
                 network_params=None, svm_params=None, settings="default", targets_per_fit=8,
                 frame_rate=25, memory=None, checkpoint=None, retries=2, n_jobs=None,
                 random_state=0, verbose=1):
    """Leave-one-speaker-out evaluation of architectures × feature sets × AU sub-classes.

    Parameters
    ----------
    corpus : AUCorpus
        ``make_speech_au_corpus()`` or ``load_manifest(...)``: recordings table ``X`` with a
        ``speaker`` column and ``labels_frame(aus, phases)``.
    architectures : sequence of str
        Keys of :data:`sklearn_s2au.classifiers.TABLE1_CONFIGS`.
    feature_sets : sequence of str
        openSMILE feature sets.
    aus, phases : sequence of str
        The AU sub-classes (targets). All targets of one fold and architecture are trained
        at once as independent models with separate early stopping.
    svm : bool, default=True
        Add the frame-wise SVM baseline of Ringeval et al. (2015) as a row.
    max_epochs : int or None
        Overrides the paper's 100 epochs (for quick runs).
    max_len : int, default=100
        T of the paper: steps per sequence.
    network_params, svm_params : dict or None
        Extra constructor arguments for the networks / ``FrameClassifier``.
    settings : {"default", "paper"}, default="default"
        The networks' training settings: the package's defaults, or the paper's exact
        ones (:func:`~sklearn_s2au.classifiers.paper_settings`: lr 1e-4, L2 1e-1, the
        paper's decoder...). ``max_epochs`` and ``network_params`` apply on top.
    targets_per_fit : int, default=8
        How many targets one vectorised fit trains as independent models. Every model
        is independent either way (its own weights, class weights and early stopping);
        groups of 8 keep the per-step tensors in cache (measured about 17 % less time
        per model than 32 at once, ``benchmarks/bench_protocol.py``) and balance the
        parallel workers.
    frame_rate : float, default=25
    memory : str, Path, joblib.Memory or None
        Feature cache.
    checkpoint : str, Path or None
        Folder where the rows of every finished fit are written as soon as it completes
        (one small CSV per fit, written atomically). A later call with the same
        checkpoint folder reads the fits already done instead of repeating them, so a
        protocol that was killed resumes where it stopped and returns the same table as
        an uninterrupted run (except for the ``seconds`` column of the resumed fits).
        A fit is identified by everything it depends on (estimator parameters,
        features, labels, train and test recordings), so a changed setting is
        recomputed, never mixed up.
    retries : int, default=2
        When a worker process dies (killed, out of memory, a Dask worker lost), the fits
        that had not finished run again, up to ``retries`` times; the finished ones are
        kept. Errors in the fits themselves are raised at once.
    n_jobs : int or None
        Folds in parallel (joblib; honours ``joblib.parallel_backend("dask")``).
    random_state : int, default=0
    verbose : int, default=1
        Show a progress bar over folds.

    Returns
    -------
    results : DataFrame
        Tidy: one row per architecture, feature set, AU, sub-class and fold, with
        columns ``architecture, feature_set, au, phase, fold, uar, classes, epochs,
        seconds``. ``uar`` is computed on the real frames of the held-out speaker only;
        ``classes`` is the number of classes in its true labels (1 when the speaker never
        shows that sub-class: its UAR is then the recall of the one class present, see
        :func:`~sklearn_s2au.metrics.sequence_uar`); ``epochs`` is the epoch whose
        weights early stopping selected; ``seconds`` the fold's wall time per target.
    """
    speakers = corpus.X["speaker"].to_numpy(dtype=object)
    folds = [(s, np.flatnonzero(speakers != s), np.flatnonzero(speakers == s))
             for s in pd.unique(speakers)]
    if len(folds) < 2:
        raise ValueError(f"leave-one-speaker-out needs at least 2 speakers, the corpus has "
                         f"{len(folds)}.")
    y, target_names = _stack_targets(corpus, aus, phases)
    unknown = [a for a in architectures if a not in TABLE1_CONFIGS]
    if unknown:
        raise ValueError(f"unknown architectures {unknown}; choose from "
                         f"{list(TABLE1_CONFIGS)}.")
    if settings not in SETTINGS:
        raise ValueError(f"settings must be one of {SETTINGS}, got {settings!r}.")
    models = [(a, _network(a, max_epochs, random_state, network_params, settings))
              for a in architectures]
    if svm:
        models.append((SVM_NAME, _svm(random_state, svm_params)))

    if targets_per_fit < 1:
        raise ValueError(f"targets_per_fit must be a positive integer, got "
                         f"{targets_per_fit!r}.")
    groups = [np.arange(i, min(i + targets_per_fit, len(target_names)))
              for i in range(0, len(target_names), targets_per_fit)]
    store = None if checkpoint is None else _FitStore(checkpoint)
    tasks, rows, n_fits = [], [], 0
    for feature_set in feature_sets:
        frames = extract_features(corpus.X, feature_set, frame_rate=frame_rate,
                                  memory=memory, n_jobs=n_jobs)
        frames_key = None if store is None else joblib_hash(frames)
        for name, estimator in models:
            for speaker, train, test in folds:
                meta = dict(architecture=name, feature_set=feature_set, fold=speaker)
                for group in groups:
                    y_group = [labels[:, group] for labels in y]
                    names = [target_names[k] for k in group]
                    n_fits += 1
                    key = n_fits
                    if store is not None:
                        key = store.key(frames_key, y_group, names, train, test, estimator,
                                        max_len, meta)
                        done = store.read(key)
                        if done is not None:
                            rows.extend(done)
                            continue
                    tasks.append(delayed(_keyed_fit)(key, frames, y_group, names, train,
                                                     test, estimator, max_len, meta))
    if store is not None and n_fits > len(tasks):
        logger.info("checkpoint %s: %d of %d fits already done", store.folder,
                    n_fits - len(tasks), n_fits)
    with _progress(len(tasks), verbose) as bar:  # one step per fit
        for attempt in range(retries + 1):
            finished = set()
            try:
                parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
                for key, fold_rows in parallel(tasks):
                    if store is not None:
                        store.write(key, fold_rows)
                    rows.extend(fold_rows)
                    finished.add(key)
                    bar.update(1)
                break
            except _worker_errors() as exc:
                # a worker process died (killed, out of memory, a lost Dask worker): the
                # fits that finished are kept, the others run again
                tasks = [task for task in tasks if task[1][0] not in finished]
                if attempt == retries:
                    raise
                logger.warning("a worker was lost (%s: %s); retrying the %d unfinished "
                               "fit(s)", type(exc).__name__, exc, len(tasks))
    order = {name: i for i, (name, _) in enumerate(models)}
    results = pd.DataFrame(rows, columns=_RESULT_COLUMNS)
    results["_order"] = results["architecture"].map(order)
    results = results.sort_values(["_order", "feature_set", "au", "phase", "fold"],
                                  kind="stable").drop(columns="_order")
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


def _keyed_fit(key, *args):
    return key, _fit_fold(*args)


class _FitStore:
    """Finished fits of a protocol, one CSV each, named by a hash of their inputs."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(frames_key, y, names, train, test, estimator, max_len, meta):
        params = sorted((k, repr(v)) for k, v in estimator.get_params(deep=False).items())
        from . import __version__

        return joblib_hash((__version__, frames_key, [np.asarray(a) for a in y], list(names),
                            np.asarray(train), np.asarray(test), type(estimator).__name__,
                            params, int(max_len), sorted(meta.items(), key=str)))

    def _path(self, key):
        return self.folder / f"fit_{key}.csv"

    def read(self, key):
        path = self._path(key)
        if not path.is_file():
            return None
        table = pd.read_csv(path, dtype={"fold": str})
        return table.to_dict("records")

    def write(self, key, rows):
        _atomic_write(self._path(key),
                      lambda tmp: pd.DataFrame(rows, columns=_RESULT_COLUMNS).to_csv(
                          tmp, index=False))


def _atomic_write(path, write):
    """``write(tmp_path)``, then rename onto ``path``: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _NoBar:
    def update(self, n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(total, verbose):
    if not verbose:
        return _NoBar()
    from tqdm.auto import tqdm

    # disable=None: no bar when the output is not a terminal (a log file stays readable)
    return tqdm(total=total, desc="fits", unit="fit", disable=None)


def table1(corpus, *, au="AU17", feature_set="ComParE_2016", architectures=None, **kwargs):
    """Series 1: every Table I architecture on the 4 sub-classes of one AU (LOSO).

    See :func:`run_protocol` for the keyword arguments and the result's columns.
    """
    architectures = list(TABLE1_CONFIGS) if architectures is None else architectures
    return run_protocol(corpus, architectures=architectures, feature_sets=(feature_set,),
                        aus=(au,), **kwargs)


def table2(corpus, *, architecture="Enc-InterAtt-Dec", feature_sets=FEATURE_SETS, **kwargs):
    """Series 2: one architecture × 8 AUs × 4 sub-classes × both feature sets (LOSO).

    See :func:`run_protocol` for the keyword arguments and the result's columns.
    """
    return run_protocol(corpus, architectures=(architecture,), feature_sets=feature_sets,
                        **kwargs)


#: Epoch cap of the demo: enough for the paper's early stopping to engage (>= 20 epochs).
DEMO_EPOCHS = 30
#: What the demo runs: two architectures, one feature set, two AUs (8 targets).
DEMO_ARCHITECTURES = ("Stacked-NoAtt", "Enc-InterAtt-Dec")
DEMO_FEATURE_SETS = ("eGeMAPSv02",)
DEMO_AUS = ("AU12", "AU17")


def demo(corpus, *, max_epochs=None, architectures=DEMO_ARCHITECTURES,
         feature_sets=DEMO_FEATURE_SETS, aus=DEMO_AUS, **kwargs):
    """The demo: a reduced but real protocol on a corpus, in a few minutes on 2 cores.

    Two Table I architectures (Stacked-NoAtt and the paper's best, Enc-InterAtt-Dec) and
    the SVM baseline on the 4 sub-classes of two AUs (8 independent models per fold,
    trained in one vectorised pass), leave-one-speaker-out on all speakers, with at most
    ``DEMO_EPOCHS`` epochs (the paper's early stopping engages from epoch 20). The full
    protocols are :func:`table1` and :func:`table2`. See :func:`run_protocol` for the
    keyword arguments and the result's columns.
    """
    max_epochs = DEMO_EPOCHS if max_epochs is None else max_epochs
    return run_protocol(corpus, architectures=architectures, feature_sets=feature_sets,
                        aus=aus, max_epochs=max_epochs, **kwargs)


def paper_table(results, rows="architecture"):
    """Pivot tidy results into a paper-style table of mean UAR % over folds.

    Parameters
    ----------
    results : DataFrame
        Output of :func:`run_protocol`.
    rows : str or list of str, default="architecture"
        Row keys; sub-classes are the columns. The mean over folds is taken per AU and
        then, as in Table II, averaged over the AUs present. Folds whose held-out speaker
        shows only one class of a target (``classes == 1``) are left out of that
        target's mean: their UAR is not comparable with the two-class chance of 50 %.

    Returns
    -------
    table : DataFrame
        UAR in percent, one column per sub-class (onset, apex, offset, occurrence).
    """
    rows = [rows] if isinstance(rows, str) else list(rows)
    if "classes" in results.columns:
        results = results[results["classes"] == 2]
    per_au = results.groupby(rows + ["au", "phase"], sort=False)["uar"].mean()
    table = per_au.groupby(rows + ["phase"], sort=False).mean().unstack("phase")
    phases = [p for p in PHASES if p in table.columns]
    return (100 * table[phases]).round(1)


def to_markdown(table, float_format="{:.1f}"):
    """A DataFrame as a GitHub-flavoured Markdown table (no extra dependency)."""
    index_name = " / ".join(str(n) for n in table.index.names if n is not None)
    header = [index_name] + [str(c) for c in table.columns]

    def cell(value):
        if isinstance(value, float):
            return "" if np.isnan(value) else float_format.format(value)
        return str(value)

    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|"]
    for key, row in table.iterrows():
        key = " / ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        lines.append("| " + " | ".join([key] + [cell(v) for v in row]) + " |")
    return "\n".join(lines)


def write_results(results, out_dir, name):
    """Write tidy results as CSV (and Parquet when pyarrow is available)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.csv"]
    _atomic_write(paths[0], lambda tmp: results.to_csv(tmp, index=False))
    try:
        _atomic_write(out_dir / f"{name}.parquet",
                      lambda tmp: results.to_parquet(tmp, index=False))
        paths.append(out_dir / f"{name}.parquet")
    except ImportError:
        logger.info("pyarrow not installed; wrote CSV only")
    return paths
