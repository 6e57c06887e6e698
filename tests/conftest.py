"""Fixtures shared by several test modules."""

import pandas as pd
import pytest

from sklearn_s2au.datasets import make_speech_au_corpus


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, restored after it (modules that train networks
    use it for all their tests: ``pytestmark = pytest.mark.usefixtures(...)``). Tiny
    tensors gain nothing from threads, and spinning OpenMP threads stall badly when
    other processes share the cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def manifest_with_aus(tmp_path):
    """``make(aus)``: a small demo corpus on disk (WAVs, OpenFace CSVs, manifest) whose
    OpenFace CSVs hold only the columns of ``aus``; returns the manifest's path."""
    def make(aus):
        corpus = make_speech_au_corpus(n_speakers=3, recordings_per_speaker=2,
                                       random_state=0)
        manifest = corpus.to_wav(tmp_path / "corpus")
        for au_file in pd.read_csv(manifest)["au_file"]:
            path = manifest.parent / au_file
            table = pd.read_csv(path)
            # OpenFace writes its column names with a leading space
            keep = [c for c in table.columns
                    if not c.strip().startswith("AU") or c.strip()[:4] in aus]
            table[keep].to_csv(path, index=False)
        return manifest
    return make
