"""``flask rpc prune-logs``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..cli import older_than_option, retention_or_fail
from .recorder import get_logger


@click.command("prune-logs")
@with_appcontext
@older_than_option(
    "Delete log rows older than this many days (default: RPCENABLE_LOG_RETENTION_DAYS)."
)
def prune_logs_command(days: float | None) -> None:
    """Delete old rows of the incoming and outgoing call logs."""
    logger = get_logger()
    if logger is None:
        raise click.ClickException("flask-rpcenable is not set up on this app.")
    days = retention_or_fail(days, logger.config.retention_days, "RPCENABLE_LOG_RETENTION_DAYS")
    incoming, outgoing = logger.prune(days)
    click.echo(
        f"Deleted {incoming} incoming and {outgoing} outgoing call(s) older than {days:g} days."
    )
