"""Fixtures of the core tests.

A module that serves one app for all its tests defines a module-scoped
``setup`` fixture yielding ``(url, records)``: the endpoint's URL and the
list its dispatcher appends every :class:`~flask_rpcenable.CallRecord` to.
"""

from __future__ import annotations

import pytest

from flask_rpcenable import CallRecord


@pytest.fixture
def url(setup: tuple[str, list[CallRecord]]) -> str:
    """The served endpoint of the module's ``setup``."""
    return setup[0]


@pytest.fixture
def records(setup: tuple[str, list[CallRecord]]) -> list[CallRecord]:
    """The records of the calls this test makes (emptied before it)."""
    setup[1].clear()
    return setup[1]


