"""Sphinx configuration for flask-rpcenable."""

from __future__ import annotations

import flask_rpcenable

project = "flask-rpcenable"
author = "flask-rpcenable developers"
copyright = "2026, flask-rpcenable developers"  # noqa: A001
release = flask_rpcenable.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Offline builds: no inventories are fetched; references to other projects stay plain text.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
nitpicky = False
