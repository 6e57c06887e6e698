"""sklearn_s2au: facial Action Unit activity from speech, as scikit-learn estimators.

Implements Stappen et al., "From speech to facial activity: towards cross-modal
sequence-to-sequence attention networks" (MMSP 2019).
"""

__version__ = "0.1.0.dev0"

from .framing import frame_count

__all__ = ["frame_count", "__version__"]
