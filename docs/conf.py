"""Sphinx configuration: the API reference, generated from the package's docstrings."""

project = "suppa_jax"
author = "suppa_jax developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"]
autosummary_generate = True
# Members where they are defined: packages re-export them (``__all__``), and documenting both
# would describe each object twice.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
