"""The background jobs' commands: ``flask rpc worker`` (an RQ worker), ``prune-jobs``
and ``fail-lost-jobs`` (job records)."""

from __future__ import annotations

import datetime
import logging
import socket

import click
from flask import current_app
from flask.cli import with_appcontext

from ..cli import older_than_option, retention_or_fail
from ..db import utcnow
from .core import get_background
from .mail import host_name


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


@click.command("fail-lost-jobs")
@click.option(
    "--host",
    metavar="NAME",
    help="A machine gone for good, named as job records show it (before ' (pid N)'): "
    "its records still queued or running are marked failed.",
)
@older_than_option(
    "Records queued more than this many days ago and still queued or running are "
    "marked failed (with --host: only that machine's)."
)
@with_appcontext
def fail_lost_jobs_command(host: str | None, days: float | None) -> None:
    """Mark failed the job records a machine gone for good, or a long outage, left behind.

    Each process marks failed, when it starts running jobs, the records that
    dead processes of its own machine left queued or running; records of a
    machine that never comes back, and of jobs that cannot still be running,
    need this command.
    """
    if host is None and days is None:
        raise click.UsageError("Give --host NAME, --older-than DAYS, or both.")
    if host is not None and host == socket.gethostname():
        raise click.UsageError(
            f"{host} is this machine: records of its dead processes are marked failed by "
            "the next process that runs jobs here, and its living processes may still run "
            "theirs. Use --older-than DAYS for records queued long ago."
        )
    background = get_background(current_app._get_current_object())  # type: ignore[attr-defined]
    criteria = [f"host {host}"] if host is not None else []
    before = None
    if days is not None:
        before = utcnow() - datetime.timedelta(days=days)
        criteria.append(f"queued more than {days:g} days ago")
    why = (
        f"Lost: declared lost with `flask rpc fail-lost-jobs` ({', '.join(criteria)}) "
        f"by {host_name()}."
    )
    count = background.records.fail_lost(why, host=host, before=before)
    click.echo(f"Marked {count} background job record(s) as failed ({', '.join(criteria)}).")
