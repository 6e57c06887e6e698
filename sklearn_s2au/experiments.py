"""The paper's experiment protocols (Table I and Table II) and AU intensity, as functions.

Both series are leave-one-speaker-out (LOSO) cross-validations scored with UAR on the
real frames of the held-out speaker; the intensity protocol (:func:`intensity`) is the
same cross-validation of regressors scored with the CCC and Pearson's r. Features are
extracted once per recording (and cached on disk with :class:`joblib.Memory` when
``memory`` is given); speaker normalisation, padding, training and early stopping happen
inside each fold on the training speakers only. The targets of one fold are trained in
groups of ``targets_per_fit``: with the default settings one network with an output per
target of the group (the networks' default ``multi_target="shared"``), with the paper's
settings one vectorised pass of independent models (``multi_target="independent"``),
numerically one model per target as in the paper. Folds run in parallel through joblib, so
``joblib.parallel_backend("dask")`` scales them out to a cluster.
"""

import logging
import numbers
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Memory
from sklearn.base import clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch

from ._protocol import atomic_write, loso_folds, run_fits, target_groups
from .baselines import FrameClassifier, FrameRegressor, _FrameEstimator
from .classifiers import (TABLE1_CONFIGS, EncInterAttDecClassifier, StackedIntraAttClassifier,
                          paper_settings)
from .ensemble import SeedEnsembleClassifier, SeedEnsembleRegressor, _SeedEnsemble
from .features import OpenSmileLLD
from .labels import AUS, PHASES, au_name
from .metrics import sequence_ccc, sequence_pearson, sequence_uar
from .preprocessing import SequencePadder, SpeakerNormaliser

__all__ = [
    "extract_features", "run_protocol", "table1", "table2", "paper_table",
    "PAPER_TABLE1", "PAPER_TABLE2", "SVM_NAME", "demo", "write_results", "to_markdown",
    "DEMO_EPOCHS", "intensity", "intensity_table", "ENCODERS", "SVR_NAME",
    "held_out_timeline", "held_out_intensity",
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


#: The regressor of each classifier family: a Table I architecture predicts intensities.
_REGRESSORS = {StackedIntraAttClassifier: "StackedIntraAttRegressor",
               EncInterAttDecClassifier: "EncInterAttDecRegressor"}


def _network(architecture, max_epochs, random_state, params, settings="default", *,
             regressor=False, n_seeds=1):
    cls, config = TABLE1_CONFIGS[architecture]
    # the paper's settings of the classifier family (its decoder included) apply to the
    # regressor of that family as well
    kwargs = paper_settings(cls) if settings == "paper" else {}
    kwargs.update(config)
    kwargs.update(random_state=random_state, verbose=0)
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    kwargs.update(params or {})
    if regressor:
        from . import regressors

        cls = getattr(regressors, _REGRESSORS[cls])
    if n_seeds == 1:
        return cls(**kwargs)
    ensemble = SeedEnsembleRegressor if regressor else SeedEnsembleClassifier
    return ensemble(cls(**kwargs), n_seeds=n_seeds, random_state=random_state)


def _svm(random_state, params):
    from sklearn.svm import LinearSVC

    params = dict(params or {})
    estimator = params.pop("estimator", None) or LinearSVC(class_weight="balanced")
    return FrameClassifier(estimator, random_state=random_state, **params)


def _pipeline(estimator, max_len):
    """The steps a protocol fits inside a fold: normalisation, padding, the model."""
    steps = [("norm", SpeakerNormaliser())]
    if not isinstance(estimator, _FrameEstimator):   # frame-wise models take frame tables
        steps.append(("pad", SequencePadder(max_len=max_len)))
    return Pipeline(steps + [("model", clone(estimator))])


def _fit_predict(frames, y, train, test, estimator, max_len):
    """Fit on the recordings ``train``, predict ``test``: the pipeline, the true and
    predicted targets of ``test`` and the wall time."""
    start = time.perf_counter()
    pipe = _pipeline(estimator, max_len)
    pipe.fit(frames.iloc[train], [y[i] for i in train])
    y_pred = pipe.predict(frames.iloc[test])
    return pipe, [y[i] for i in test], y_pred, time.perf_counter() - start


def _fit_fold(frames, y, target_names, train, test, estimator, max_len, meta):
    """Train on the training speakers of one fold, score the held-out speaker (UAR)."""
    pipe, y_test, y_pred, seconds = _fit_predict(frames, y, train, test, estimator, max_len)
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


def _selected_epochs(model, n_targets):
    if isinstance(model, _SeedEnsemble):        # the members' mean, rounded
        per_member = [_selected_epochs(m, n_targets) for m in model.estimators_]
        means = [float(np.mean(e)) for e in zip(*per_member)]
        return [int(round(m)) if np.isfinite(m) else np.nan for m in means]
    epochs = getattr(model, "selected_epochs_", None)
    if epochs is None:
        return [np.nan] * n_targets
    return [int(e) for e in np.broadcast_to(np.asarray(epochs), (n_targets,))]


def _check_n_seeds(n_seeds):
    if (not isinstance(n_seeds, numbers.Integral) or isinstance(n_seeds, bool)
            or n_seeds < 1):
        raise ValueError(f"n_seeds must be an int >= 1 (networks per fit, their outputs "
                         f"averaged), got {n_seeds!r}.")
    return int(n_seeds)


def _check_networks(architectures, settings):
    unknown = [a for a in architectures if a not in TABLE1_CONFIGS]
    if unknown:
        raise ValueError(f"unknown architectures {unknown}; choose from "
                         f"{list(TABLE1_CONFIGS)}.")
    if settings not in SETTINGS:
        raise ValueError(f"settings must be one of {SETTINGS}, got {settings!r}.")


def _run(corpus, fit, models, feature_sets, y, target_names, *, columns, targets_per_fit,
         max_len, frame_rate, memory, checkpoint, retries, n_jobs, verbose):
    """Features of every feature set, then every fit of a protocol (see ``run_fits``)."""
    folds = loso_folds(corpus)
    groups = target_groups(len(target_names), targets_per_fit)
    frames = {feature_set: extract_features(corpus.X, feature_set, frame_rate=frame_rate,
                                            memory=memory, n_jobs=n_jobs)
              for feature_set in feature_sets}
    return run_fits(fit, frames, models, folds, y, target_names, groups, columns=columns,
                    max_len=max_len, checkpoint=checkpoint, retries=retries, n_jobs=n_jobs,
                    verbose=verbose)


def run_protocol(corpus, *, architectures=("Enc-InterAtt-Dec",), feature_sets=FEATURE_SETS,
                 aus=AUS, phases=PHASES, svm=True, max_epochs=None, max_len=100,
                 network_params=None, svm_params=None, settings="default", targets_per_fit=8,
                 frame_rate=25, memory=None, checkpoint=None, retries=2, n_jobs=None,
                 random_state=0, n_seeds=1, verbose=1):
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
        The AU sub-classes (targets), trained per fold and architecture in groups of
        ``targets_per_fit``.
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
        How many targets one fit trains: with the default settings one network with an
        output per target of the group (``multi_target="shared"``; which targets share
        a network changes the results: on the demo corpus groups of 8, two AUs × 4
        sub-classes, scored higher than 4 or 32, see ``docs/architectures.rst``), with
        the paper's settings independent models in one vectorised pass (each with its
        own weights, class weights and early stopping; groups of 8 keep the per-step
        tensors in cache, measured about 17 % less time per model than 32 at once,
        ``benchmarks/bench_protocol.py``). Groups also balance the parallel workers.
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
        features, labels, train and test recordings, and the package's version and
        source code), so a changed setting or changed code is recomputed, never mixed
        up.
    retries : int, default=2
        When a worker process dies (killed, out of memory, a Dask worker lost), the fits
        that had not finished run again, up to ``retries`` times; the finished ones are
        kept. Errors in the fits themselves are raised at once.
    n_jobs : int or None
        Folds in parallel (joblib; honours ``joblib.parallel_backend("dask")``).
    random_state : int, default=0
    n_seeds : int, default=1
        With more than 1, every network is a
        :class:`~sklearn_s2au.ensemble.SeedEnsembleClassifier` of that many seeds
        (``random_state``, ``random_state + 1``, ...; the first is the single network's
        seed), its frame probabilities averaged; ``n_seeds`` times the networks' cost.
        The SVM is unchanged.
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
        weights early stopping selected (a seed ensemble: its members' mean, rounded);
        ``seconds`` the fold's wall time per target.
    """
    loso_folds(corpus)
    y, target_names = _stack_targets(corpus, aus, phases)
    _check_networks(architectures, settings)
    n_seeds = _check_n_seeds(n_seeds)
    models = [(dict(architecture=a), _network(a, max_epochs, random_state, network_params,
                                              settings, n_seeds=n_seeds))
              for a in architectures]
    if svm:
        models.append((dict(architecture=SVM_NAME), _svm(random_state, svm_params)))
    return _run(corpus, _fit_fold, models, feature_sets, y, target_names,
                columns=_RESULT_COLUMNS, targets_per_fit=targets_per_fit, max_len=max_len,
                frame_rate=frame_rate, memory=memory, checkpoint=checkpoint,
                retries=retries, n_jobs=n_jobs, verbose=verbose)


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
    the SVM baseline on the 4 sub-classes of two AUs (8 targets per fold, one network
    with an output per target under the default settings), leave-one-speaker-out on all
    speakers, with at most ``DEMO_EPOCHS`` epochs (the paper's early stopping engages
    from epoch 20). The full protocols are :func:`table1` and :func:`table2`. See
    :func:`run_protocol` for the keyword arguments and the result's columns.
    """
    max_epochs = DEMO_EPOCHS if max_epochs is None else max_epochs
    return run_protocol(corpus, architectures=architectures, feature_sets=feature_sets,
                        aus=aus, max_epochs=max_epochs, **kwargs)


# ---- AU intensity (issue 13) ---------------------------------------------------------

#: Sequence layers of the intensity protocol's networks (``module__encoder``).
ENCODERS = ("lstm", "transformer", "tcn")
#: The ``architecture`` of the ``FrameRegressor(SVR())`` baseline in intensity results.
SVR_NAME = "SVR (frame-wise)"
#: Columns of the intensity results, one row per fit, AU and fold.
_INTENSITY_COLUMNS = ["architecture", "encoder", "feature_set", "au", "fold", "ccc", "r",
                      "epochs", "seconds"]
#: The ``encoder`` of the frame-wise SVR, which has none.
_NO_ENCODER = "-"


def _intensity_targets(corpus, aus):
    """Per-recording (n_frames, n_aus) intensity arrays and the AU names."""
    names = list(corpus.intensity) if aus is None else [au_name(a) for a in aus]
    return corpus.intensity(aus=names), names


def _svr(random_state, params):
    from sklearn.svm import SVR

    params = dict(params or {})
    estimator = params.pop("estimator", None) or SVR()
    return FrameRegressor(estimator, random_state=random_state, **params)


def _fit_intensity_fold(frames, y, target_names, train, test, estimator, max_len, meta):
    """Train on the training speakers of one fold, score the held-out speaker (CCC, r)."""
    pipe, y_test, y_pred, seconds = _fit_predict(frames, y, train, test, estimator, max_len)
    with warnings.catch_warnings():
        # a held-out speaker who never shows an AU: CCC 0, r NaN (left out of the means)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        ccc = sequence_ccc(y_test, y_pred, targets=target_names, return_per_target=True)
        r = sequence_pearson(y_test, y_pred, targets=target_names, return_per_target=True)
    epochs = _selected_epochs(pipe[-1], len(target_names))
    return [dict(meta, au=name, ccc=float(ccc[name]), r=float(r[name]), epochs=epochs[k],
                 seconds=seconds / len(target_names))
            for k, name in enumerate(target_names)]


def intensity(corpus, *, architectures=("Stacked-NoAtt",), encoders=ENCODERS,
              feature_sets=("eGeMAPSv02",), aus=AUS, svr=True, loss="mse", max_epochs=None,
              max_len=100, network_params=None, svr_params=None, settings="default",
              targets_per_fit=8, frame_rate=25, memory=None, checkpoint=None, retries=2,
              n_jobs=None, random_state=0, n_seeds=1, verbose=1):
    """Leave-one-speaker-out AU intensity regression: CCC and Pearson r per AU.

    The classification protocol (:func:`run_protocol`) with regressors and intensity
    targets (``corpus.intensity(aus=...)``, 0-5 on the frame grid): the same folds,
    feature cache, per-fold normalisation and padding, checkpoints and retries. Every
    Table I architecture given is trained as its regressor
    (:class:`~sklearn_s2au.StackedIntraAttRegressor` or
    :class:`~sklearn_s2au.EncInterAttDecRegressor`) with each encoder, all AUs of a fold
    at once as independent models; ``FrameRegressor(SVR())`` is the baseline.

    Parameters
    ----------
    corpus : AUCorpus
        ``make_speech_au_corpus()`` or ``load_manifest(...)`` (which reads OpenFace's
        ``AUxx_r`` intensities).
    architectures : sequence of str, default=("Stacked-NoAtt",)
        Keys of :data:`sklearn_s2au.classifiers.TABLE1_CONFIGS`.
    encoders : sequence of {"lstm", "transformer", "tcn"}, default=ENCODERS
        ``module__encoder`` of the networks: each architecture runs with each encoder.
    feature_sets : sequence of str, default=("eGeMAPSv02",)
    aus : sequence of str or None, default=AUS
        The AUs (targets); None: every AU of the corpus.
    svr : bool, default=True
        Add ``FrameRegressor(SVR())`` (RBF kernel, every training frame) as a row.
    loss : {"mse", "ccc"}, default="mse"
        The networks' training loss.
    max_epochs, max_len, settings, targets_per_fit, frame_rate, memory, checkpoint, \
retries, n_jobs, random_state, verbose
        As in :func:`run_protocol`.
    n_seeds : int, default=1
        With more than 1, every network is a
        :class:`~sklearn_s2au.ensemble.SeedEnsembleRegressor` of that many seeds, its
        predictions averaged (as in :func:`run_protocol`); the SVR is unchanged. ``settings="paper"`` trains with the paper's
        settings of the architecture's classifier family.
    network_params, svr_params : dict or None
        Extra constructor arguments for the networks / ``FrameRegressor`` (its
        ``estimator`` included, e.g. ``{"estimator": LinearSVR(), "max_frames": 5000}``).

    Returns
    -------
    results : DataFrame
        Tidy: one row per architecture, encoder, feature set, AU and fold, with columns
        ``architecture, encoder, feature_set, au, fold, ccc, r, epochs, seconds``.
        ``ccc`` and ``r`` are computed on the real frames of the held-out speaker only
        (:func:`~sklearn_s2au.metrics.sequence_ccc`,
        :func:`~sklearn_s2au.metrics.sequence_pearson`): a speaker who never shows an
        AU has a CCC of 0 and an undefined r (NaN) for it. The SVR's architecture is
        :data:`SVR_NAME`, its encoder ``"-"``. ``epochs`` and ``seconds`` as in
        :func:`run_protocol`. :func:`intensity_table` pivots them.

    Examples
    --------
    >>> from sklearn_s2au import experiments
    >>> from sklearn_s2au.datasets import make_speech_au_corpus
    >>> corpus = make_speech_au_corpus(n_speakers=3, recordings_per_speaker=2)
    >>> res = experiments.intensity(corpus, encoders=["tcn"], aus=["AU12", "AU17"],
    ...                             max_epochs=2, verbose=0)
    >>> res.groupby(["architecture", "encoder"], sort=False).size()
    architecture      encoder
    Stacked-NoAtt     tcn        6
    SVR (frame-wise)  -          6
    dtype: int64
    """
    loso_folds(corpus)
    y, names = _intensity_targets(corpus, aus)
    _check_networks(architectures, settings)
    unknown = [e for e in encoders if e not in ENCODERS]
    if unknown or not len(encoders):
        raise ValueError(f"encoders must be a non-empty list of {list(ENCODERS)}, got "
                         f"{list(encoders)}.")
    n_seeds = _check_n_seeds(n_seeds)
    params = dict(loss=loss, **(network_params or {}))
    models = [(dict(architecture=a, encoder=e),
               _network(a, max_epochs, random_state, dict(params, module__encoder=e),
                        settings, regressor=True, n_seeds=n_seeds))
              for a in architectures for e in encoders]
    if svr:
        models.append((dict(architecture=SVR_NAME, encoder=_NO_ENCODER),
                       _svr(random_state, svr_params)))
    return _run(corpus, _fit_intensity_fold, models, feature_sets, y, names,
                columns=_INTENSITY_COLUMNS, targets_per_fit=targets_per_fit,
                max_len=max_len, frame_rate=frame_rate, memory=memory,
                checkpoint=checkpoint, retries=retries, n_jobs=n_jobs, verbose=verbose)


def intensity_table(results, metric="ccc", rows=("architecture", "encoder")):
    """Pivot tidy intensity results into mean CCC (or r) per model and AU.

    Parameters
    ----------
    results : DataFrame
        Output of :func:`intensity`.
    metric : {"ccc", "r"}, default="ccc"
    rows : str or list of str, default=("architecture", "encoder")
        Row keys (add ``"feature_set"`` when several were run).

    Returns
    -------
    table : DataFrame
        The mean over folds of every AU (NaN folds, an undefined r, left out), one
        column per AU in the results' order, and their ``mean``; rows in the results'
        order.
    """
    if metric not in ("ccc", "r"):
        raise ValueError(f"metric must be 'ccc' or 'r', got {metric!r}.")
    rows = [rows] if isinstance(rows, str) else list(rows)
    per_au = results.groupby(rows + ["au"], sort=False)[metric].mean()
    # unstack sorts: back to the results' order of models and AUs
    table = per_au.unstack("au").loc[per_au.index.droplevel("au").unique()]
    table = table[list(pd.unique(results["au"]))]
    table.columns.name = None
    table["mean"] = table.mean(axis=1)
    return table


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
    atomic_write(paths[0], lambda tmp: results.to_csv(tmp, index=False))
    try:
        atomic_write(out_dir / f"{name}.parquet",
                      lambda tmp: results.to_parquet(tmp, index=False))
        paths.append(out_dir / f"{name}.parquet")
    except ImportError:
        logger.info("pyarrow not installed; wrote CSV only")
    return paths


# ---- the models the figures show --------------------------------------------------------

def _held_out(corpus, estimator, y, target_names, *, feature_set, test_speaker, activity,
              memory, max_len=100):
    """Fit ``estimator`` (with the protocol's steps) on every speaker but ``test_speaker``
    and predict that speaker's recording with the most ``activity``."""
    speakers = corpus.X["speaker"].to_numpy(dtype=object)
    test_speaker = speakers[-1] if test_speaker is None else test_speaker
    test = speakers == test_speaker
    if not test.any() or test.all():
        raise ValueError(f"test_speaker {test_speaker!r}: give one of the corpus' "
                         f"speakers {list(pd.unique(speakers))}, leaving others to train "
                         f"on.")
    frames = extract_features(corpus.X, feature_set, memory=memory)
    positions = np.flatnonzero(test)
    # the held-out recording where the AU is most active shows most of its course
    chosen = positions[np.argmax([activity(y[i]) for i in positions])]
    pipe, y_true, y_pred, _ = _fit_predict(frames, y, np.flatnonzero(~test), [chosen],
                                           estimator, max_len)
    one = frames.iloc[[chosen]]
    # None for a regressor, whose predict_proba raises AttributeError
    proba = pipe.predict_proba(one)[0] if hasattr(pipe, "predict_proba") else None
    model = pipe[-1]
    layers = model.module_.attention_layers() if hasattr(model, "module_") else []
    attention = None
    if layers:
        attention = model.predict_attention(pipe[:-1].transform(one), layer=layers[0])[0]
    return Bunch(recording=one.index[0], speaker=test_speaker, y_true=y_true[0],
                 y_pred=y_pred[0], proba=proba, target_names=list(target_names),
                 frame_rate=corpus.frame_rate, attention=attention,
                 attention_layer=layers[0] if layers else None, model=pipe)


def held_out_timeline(corpus, *, au="AU17", feature_set="eGeMAPSv02",
                      architecture="Enc-InterAtt-Dec", test_speaker=None, max_epochs=None,
                      settings="default", memory=None, random_state=0):
    """A network's predicted AU sub-classes on one recording of a held-out speaker.

    A network of ``architecture`` is trained (the four sub-classes of ``au`` as its
    targets, in the layout of the settings as in the protocols) on every speaker but
    ``test_speaker``, and predicts the held-out recording where ``au`` is active
    longest: what :func:`sklearn_s2au.plotting.protocol_figures` draws for ``python -m
    sklearn_s2au table1/table2/demo``.

    Parameters
    ----------
    corpus : AUCorpus
    au : str, default="AU17"
    feature_set : str, default="eGeMAPSv02"
    architecture : str, default="Enc-InterAtt-Dec"
        A key of :data:`~sklearn_s2au.classifiers.TABLE1_CONFIGS`.
    test_speaker : str or None
        Held-out speaker (default: the last one).
    max_epochs : int or None
        Epoch cap of the network (default: 100).
    settings : {"default", "paper"}, default="default"
    memory : str, Path, joblib.Memory or None
        Feature cache, as in :func:`extract_features`.
    random_state : int, default=0

    Returns
    -------
    held_out : Bunch
        ``recording`` (index label in ``corpus.X``), ``speaker``, ``y_true`` and
        ``y_pred`` (``(n_frames, 4)`` 0/1), ``proba`` (the predicted probabilities),
        ``target_names``, ``frame_rate``, ``model_name`` (``architecture``),
        ``attention`` (the first attention layer's weights ``(n_steps, n_frames)`` on
        the recording, or None when the network has none), ``attention_layer`` and
        ``model`` (the fitted pipeline: normaliser, padder, network).
    """
    _check_networks([architecture], settings)
    bunch = corpus.labels_frame(aus=[au])
    network = _network(architecture, max_epochs, random_state, None, settings)
    occurrence = list(bunch.target_names).index(f"{au_name(au)}_occurrence")
    held_out = _held_out(corpus, network, bunch.y, bunch.target_names,
                         feature_set=feature_set, test_speaker=test_speaker,
                         activity=lambda labels: labels[:, occurrence].sum(), memory=memory)
    held_out.model_name = architecture
    return held_out


def held_out_intensity(corpus, *, aus=AUS, feature_set="eGeMAPSv02",
                       architecture="Stacked-NoAtt", encoder="lstm", loss="mse",
                       test_speaker=None, max_epochs=None, settings="default", memory=None,
                       random_state=0):
    """A network's predicted AU intensities on one recording of a held-out speaker.

    The intensity counterpart of :func:`held_out_timeline`: the regressor of
    ``architecture`` with ``encoder`` (all ``aus`` as independent models, as in
    :func:`intensity`), trained on every speaker but ``test_speaker``, predicts the
    held-out recording with the most AU activity (the largest sum of its intensities).

    Parameters
    ----------
    corpus : AUCorpus
    aus : sequence of str or None, default=AUS
        None: every AU of the corpus.
    feature_set, architecture, test_speaker, max_epochs, settings, memory, random_state
        As in :func:`held_out_timeline` (default architecture ``"Stacked-NoAtt"``).
    encoder : {"lstm", "transformer", "tcn"}, default="lstm"
    loss : {"mse", "ccc"}, default="mse"

    Returns
    -------
    held_out : Bunch
        As for :func:`held_out_timeline`, with ``y_true`` and ``y_pred`` the intensities
        ``(n_frames, n_aus)``, ``target_names`` the AUs, ``model_name``
        ``"architecture (encoder)"`` and ``proba`` None; for
        :func:`sklearn_s2au.plotting.plot_intensity_timeline`.
    """
    _check_networks([architecture], settings)
    y, names = _intensity_targets(corpus, aus)
    network = _network(architecture, max_epochs, random_state,
                       dict(loss=loss, module__encoder=encoder), settings, regressor=True)
    held_out = _held_out(corpus, network, y, names, feature_set=feature_set,
                         test_speaker=test_speaker, activity=np.sum, memory=memory)
    held_out.model_name = f"{architecture} ({encoder})"
    return held_out
