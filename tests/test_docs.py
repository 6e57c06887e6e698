"""The documentation: API reference complete, examples gallery runnable.

The fast tests check that every public name is in ``docs/api.rst``. Running the gallery
examples takes minutes, so those tests are marked slow (``pytest -m slow``); ``make docs``
runs them as well, through sphinx-gallery, with warnings as errors.
"""

import ast
import doctest
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_s2au

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.rst"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))

# Modules whose ``__all__`` is public API, besides what ``sklearn_s2au`` exports.
PUBLIC_MODULES = ["features", "preprocessing", "baselines", "classifiers", "callbacks",
                  "regressors", "metrics", "labels", "datasets", "experiments", "plotting",
                  "framing", "nn", "ensemble"]


def _autosummary_entries():
    """``{full dotted name: entry}`` of every autosummary entry in api.rst."""
    text = API.read_text()
    entries = {}
    module = None
    in_autosummary = False
    for line in text.splitlines():
        current = re.match(r"\.\. (?:py:module|currentmodule|module):: (\S+)", line)
        if current:
            module = current.group(1)
            continue
        if line.startswith(".. autosummary::"):
            in_autosummary = True
            continue
        if in_autosummary:
            if line and not line.startswith(" "):
                in_autosummary = False
                continue
            item = line.strip()
            if item and not item.startswith(":"):
                entries[f"{module}.{item}"] = item
    return entries


def test_api_lists_every_exported_name():
    entries = _autosummary_entries()
    text = API.read_text()
    missing = []
    for name in sklearn_s2au.__all__:
        if name.startswith("__"):
            if name not in text:
                missing.append(name)
            continue
        exported = getattr(sklearn_s2au, name)
        # listed at top level, or under the module that defines it
        found = f"sklearn_s2au.{name}" in entries or any(
            full.endswith(f".{name}") and _resolve(full) is exported for full in entries)
        if not found:
            missing.append(name)
    assert not missing, (f"public names missing from docs/api.rst: {missing}; add them "
                         f"to an autosummary block")


def test_api_lists_every_public_module_name():
    entries = _autosummary_entries()
    exported = set(sklearn_s2au.__all__)
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(f"sklearn_s2au.{module_name}")
        for name in module.__all__:
            if f"sklearn_s2au.{module_name}.{name}" in entries:
                continue
            if name in exported and f"sklearn_s2au.{name}" in entries:
                continue
            missing.append(f"{module_name}.{name}")
    assert not missing, (f"public module names missing from docs/api.rst: {missing}")


def test_api_entries_resolve():
    unresolved = [full for full in _autosummary_entries() if _resolve(full) is None]
    assert not unresolved, f"docs/api.rst lists names that do not exist: {unresolved}"


def _resolve(dotted):
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


@pytest.mark.parametrize("page, n_examples", [("user_guide.rst", 4),
                                              ("architectures.rst", 5),
                                              ("intensity.rst", 10)])
def test_doc_pages_doctests_pass(page, n_examples):
    result = doctest.testfile(str(ROOT / "docs" / page), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted >= n_examples        # the page's examples did run


def test_doc_pages_without_doctests_say_so():
    # pages whose code is illustration only (``::`` blocks): a doctest added there must
    # join the list above to be run
    for page in ("demo_corpus.rst", "protocols.rst", "data_contract.rst",
                 "getting_started.rst"):
        assert ">>>" not in (ROOT / "docs" / page).read_text(), page


@pytest.mark.slow
def test_getting_started_code_runs_and_learns():
    text = (ROOT / "docs" / "getting_started.rst").read_text()
    block = text.split(".. code-block:: python\n")[1].split("\nWhat the")[0]
    code = "\n".join(line[4:] for line in block.splitlines())
    namespace = {}
    exec(compile(code, "getting_started.rst", "exec"), namespace)
    uar = namespace["sequence_uar"](namespace["y_test"],
                                    namespace["pipe"].predict(namespace["corpus"].X[
                                        namespace["test"]]))
    assert 0.53 < uar <= 1.0       # a held-out speaker, above chance (0.5)


def test_examples_are_gallery_scripts():
    assert (ROOT / "examples" / "README.txt").is_file()
    assert len(EXAMPLES) >= 7
    for path in EXAMPLES:
        tree = ast.parse(path.read_text(), filename=str(path))
        doc = ast.get_docstring(tree)
        assert doc, f"{path.name} needs a docstring with a title (sphinx-gallery)"
        title, underline = doc.splitlines()[:2]
        assert set(underline) == {"="} and len(underline) >= len(title), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    # one torch thread, as `make docs` runs them: extra threads only add contention
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (f"{path.name} failed:\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-5000:]}")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], f"{path.name} wrote files into its folder"
