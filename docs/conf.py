"""Sphinx configuration: numpydoc API reference and a sphinx-gallery of examples.

Built offline (no intersphinx inventories are fetched) with warnings as errors:
``make docs`` runs ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
The gallery executes every ``examples/plot_*.py`` script.
"""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))

import sklearn_s2au  # noqa: E402

project = "sklearn_s2au"
author = "sklearn_s2au developers"
copyright = "2026, sklearn_s2au developers"
version = release = sklearn_s2au.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# -- API reference -------------------------------------------------------------------
autosummary_generate = True
templates_path = ["_templates"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc's docstring validation (numpydoc_validation_checks) is left off: its strict
# checks flag terse but correct entries ("frame_rate : float, default=25", PR07) by the
# hundred. Malformed numpydoc sections still fail the build through -W.

# Document the methods a class defines or inherits from this package's private bases
# (the classifiers' fit/predict live in a private base class), but not the dozens
# inherited from skorch, scikit-learn or dict.
autodoc_default_options = {
    "members": True,
    "inherited-members": ("NeuralNet,BaseEstimator,TransformerMixin,ClassifierMixin,"
                          "_SetOutputMixin,_MetadataRequester,_HTMLDocumentationLinkMixin,"
                          "ReprHTMLMixin,Callback,Module,Bunch,dict,object"),
}
autodoc_typehints = "none"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json"]
nitpicky = False

# -- HTML ----------------------------------------------------------------------------
# the theme of scikit-learn and imbalanced-learn
html_theme = "pydata_sphinx_theme"
html_title = "sklearn_s2au"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []

# -- Examples gallery ----------------------------------------------------------------
# joblib's loky restarts a worker whose memory grew by 300 MB since its first task: the
# workers that extracted openSMILE features import torch when they first train a
# network. The restart is harmless (the folds' results are unchanged) but its warning
# would show in the rendered example output.
warnings.filterwarnings("ignore", category=UserWarning,
                        message="A worker stopped while some jobs were given")

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "doc_module": ("sklearn_s2au",),
    "backreferences_dir": "generated/backreferences",
    "min_reported_time": 1,
    "show_memory": False,
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}


def _write_table1_configs(app):
    """docs/generated/table1_configs.inc: Table I names -> constructor arguments.

    Generated from ``sklearn_s2au.classifiers.TABLE1_CONFIGS`` at every build, so the
    architectures page cannot drift from the code.
    """
    from sklearn_s2au.classifiers import TABLE1_CONFIGS

    rows = []
    for name, (cls, kwargs) in TABLE1_CONFIGS.items():
        args = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        rows.append((name, f":class:`~sklearn_s2au.{cls.__name__}`", f"``{args}``"))
    header = ("Table I name", "estimator", "constructor arguments")
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + rows:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    out = os.path.join(app.srcdir, "generated", "table1_configs.inc")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    text = "\n".join(lines) + "\n"
    if not os.path.exists(out) or open(out).read() != text:
        with open(out, "w") as f:
            f.write(text)


# The classifiers override skorch's narrow hooks (get_loss, get_split_datasets, ...) in
# their private base class; the reference shows the methods a user calls.
_CLASSIFIER_METHODS = {"fit", "partial_fit", "predict", "predict_proba",
                       "predict_attention", "score"}


def _skip_members(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,predict,score,...}_request on every estimator
    # class; their docstrings refer to scikit-learn's own glossary.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    qualname = getattr(obj, "__qualname__", "")
    if qualname.startswith("_SequenceClassifier.") and name not in _CLASSIFIER_METHODS:
        return True
    # the intensity regressors: the same, without predict_proba (a property that
    # raises AttributeError, so that hasattr says a regressor has none)
    if qualname.startswith("_SequenceRegressor.") and name not in _CLASSIFIER_METHODS:
        return True
    if name == "predict_proba" and isinstance(obj, property):
        return True
    return None


def setup(app):
    app.connect("builder-inited", _write_table1_configs)
    app.connect("autodoc-skip-member", _skip_members)
