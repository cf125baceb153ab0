"""What the ``flask rpc prune-*`` commands share: ``--older-than DAYS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["older_than_option", "retention_or_fail"]


def older_than_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--older-than DAYS`` option (a positive number, passed as ``days``)."""
    return click.option(
        "--older-than",
        "days",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help=help_text,
    )


def retention_or_fail(days: float | None, retention: float | None, setting: str) -> float:
    """``days`` if given, else the retention setting's value.

    :raises click.ClickException: when both are ``None`` (the setting keeps
        rows forever and no ``--older-than`` was given).
    """
    if days is None:
        days = retention
    if days is None:
        raise click.ClickException(f"{setting} is None (keep forever): give --older-than DAYS.")
    return days
