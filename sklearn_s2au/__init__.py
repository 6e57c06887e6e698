"""sklearn_s2au: facial Action Unit activity from speech, as scikit-learn estimators.

Implements Stappen et al., "From speech to facial activity: towards cross-modal
sequence-to-sequence attention networks" (MMSP 2019).

The public names are loaded lazily: parallel feature-extraction workers import this
package, and importing torch/skorch there would add seconds to every worker start.
"""

import importlib

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "OpenSmileLLD": "features",
    "SpeakerNormaliser": "preprocessing",
    "SequencePadder": "preprocessing",
    "SequenceBatch": "preprocessing",
    "FrameClassifier": "baselines",
    "FrameRegressor": "baselines",
    "SeedEnsembleClassifier": "ensemble",
    "SeedEnsembleRegressor": "ensemble",
    "StackedIntraAttClassifier": "classifiers",
    "EncInterAttDecClassifier": "classifiers",
    "StackedIntraAttRegressor": "regressors",
    "EncInterAttDecRegressor": "regressors",
    "sequence_uar": "metrics",
    "SequenceUARScorer": "metrics",
    "uar_scorer": "metrics",
    "uar_per_target_scorer": "metrics",
    "sequence_ccc": "metrics",
    "sequence_pearson": "metrics",
    "SequenceCCCScorer": "metrics",
    "SequencePearsonScorer": "metrics",
    "ccc_scorer": "metrics",
    "pearson_scorer": "metrics",
    "frame_count": "framing",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
