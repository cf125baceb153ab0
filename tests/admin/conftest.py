"""Fixtures of the admin tests: a headless Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live import env_or_skip

#: How Chromium starts here: headless, as root, with no network of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium (``RPCENABLE_TEST_CHROMIUM``); skips where it is not set up."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = env_or_skip("RPCENABLE_TEST_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
