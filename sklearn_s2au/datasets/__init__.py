"""The generated demo corpus, and loaders for your own recordings and AU annotations.

:func:`make_speech_au_corpus` synthesises speech and facial Action Unit intensity curves
that share one set of latent articulatory and affective trajectories, so the audio
carries real but imperfect information about the face. :func:`read_openface_csv` and
:func:`load_manifest` bring your own corpus (audio files + OpenFace output) into the same
:class:`AUCorpus` container, so every later step treats both alike.
"""

from . import _latent
from ._corpus import AUCorpus, AUIntensity
from ._generate import make_speech_au_corpus
from ._manifest import load_manifest
from ._openface import read_openface_csv

__all__ = ["AUCorpus", "AUIntensity", "make_speech_au_corpus", "read_openface_csv",
           "load_manifest", "EMOTIONS", "LATENT_COLUMNS"]

# Assigned here, not only imported, so that Sphinx finds their ``#:`` documentation in
# the module where the API reference lists them.
#: Emotions portrayed in the demo corpus (cycled over each speaker's recordings).
EMOTIONS = _latent.EMOTIONS

#: Columns of each recording's latent trajectories (``AUCorpus.latent``), at 25 Hz.
LATENT_COLUMNS = _latent.LATENT_COLUMNS
