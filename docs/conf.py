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
# Every cross-reference must resolve (CI builds with -n -W). Offline builds
# have no intersphinx inventories, so references to other projects (the
# standard library, Flask, SQLAlchemy, ...) cannot resolve and are not checked;
# references into flask_rpcenable are.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(xmlrpc|xml|socket|ssl|os|collections|datetime|hmac|secrets|types|typing|http|json|logging"
        r"|flask|flask_sqlalchemy|flask_caching|flask_admin|flask_mail|sqlalchemy|werkzeug"
        r"|markupsafe|wtforms|rq|redis)(\..*)?",
    ),
    # Names as they appear in type hints, unqualified.
    (r"py:class", r"Flask|SQLAlchemy|Cache|Admin|Response|SimpleNamespace|Fault|ModelView"),
    # Type variables of the public signatures.
    (r"py:class", r"F|R|flask_rpcenable\.(extension\.F|background\.R)"),
    # Internal classes named in RPCState's fields, not part of the API.
    (
        r"py:class",
        r"(flask_rpcenable\.[\w.]+\.)?"
        r"(Settings|Dispatcher|Registry|CallLogger|Background|AdminState)",
    ),
]
