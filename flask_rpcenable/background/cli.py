"""``flask rpc worker``: run an RQ worker for the app's background jobs."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from ..cli import older_than_option, retention_or_fail
from .core import get_background


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run the jobs waiting now, then exit.")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME",
    help="Queue to take jobs from (repeatable); defaults to RPCENABLE_RQ_QUEUE.",
)
@click.option(
    "--simple",
    is_flag=True,
    help="Run jobs in the worker process, without forking (platforms without fork).",
)
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after this many jobs.")
@click.option("--name", help="Worker name shown by RQ (default: a random one).")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@with_appcontext
def worker_command(
    burst: bool,
    queues: tuple[str, ...],
    simple: bool,
    max_jobs: int | None,
    name: str | None,
    log_level: str,
) -> None:
    """Run an RQ worker for postponed functions (RPCENABLE_BACKGROUND = "rq").

    Jobs run inside this app's context, with job records and error mail.
    """
    from .rq_worker import run_worker

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        run_worker(app, queues=queues, burst=burst, simple=simple, max_jobs=max_jobs, name=name)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("prune-jobs")
@older_than_option(
    "Delete job records queued more than this many days ago "
    "(default: RPCENABLE_BACKGROUND_RETENTION_DAYS)."
)
@with_appcontext
def prune_jobs_command(days: float | None) -> None:
    """Delete old background job records."""
    background = get_background(current_app._get_current_object())  # type: ignore[attr-defined]
    days = retention_or_fail(
        days, background.settings.retention_days, "RPCENABLE_BACKGROUND_RETENTION_DAYS"
    )
    count = background.records.prune(days)
    click.echo(f"Deleted {count} background job record(s) queued more than {days:g} days ago.")
