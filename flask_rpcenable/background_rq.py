"""Where RQ jobs queued by flask-rpcenable 0.1 find their entry point.

RQ stores the dotted path of the function it runs with each queued job.
Jobs queued before the package moved its modules into subpackages name
``flask_rpcenable.background_rq.execute``; this module keeps that path
importable so that such jobs still run after an upgrade. New jobs name
:func:`flask_rpcenable.background.rq_backend.execute`.
"""

from __future__ import annotations

from .background.rq_backend import execute

__all__ = ["execute"]
