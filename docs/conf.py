"""Sphinx configuration: numpydoc API reference and a sphinx-gallery of examples."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import sklearn_s2au  # noqa: E402

project = "sklearn_s2au"
author = "sklearn_s2au developers"
copyright = "2026, sklearn_s2au developers"
version = release = sklearn_s2au.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {"members": True, "inherited-members": False}
intersphinx_mapping = {}  # built offline: no inventories are fetched
templates_path = []
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "alabaster"
nitpicky = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "abort_on_example_error": True,
}
