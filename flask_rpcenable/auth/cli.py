"""``flask rpc users ...``: manage API users from the command line.

``create NAME`` prints the new key once; ``list`` never shows keys;
``deactivate NAME`` / ``activate NAME``; ``rotate-key NAME`` prints a new key
(the old one stops working at once); ``reencrypt`` rewrites the stored keys
under the current ``RPCENABLE_SECRET_KEY`` after a secret rotation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from ..state import RPCState, primary_state
from .users import MissingSecretError, create_api_user, reencrypt_keys

__all__ = ["users_group"]


def _state() -> RPCState:
    state = primary_state(current_app)
    if state is None:
        raise click.ClickException("flask-rpcenable is not set up on this app")
    return state


@contextmanager
def _database() -> Iterator[tuple[Any, type]]:
    state = _state()
    try:
        yield state.db, state.models.APIUser
    except MissingSecretError as exc:
        state.db.session.rollback()
        raise click.ClickException(str(exc)) from None
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        state.db.session.rollback()
        raise click.ClickException(
            f"database error ({type(exc.orig).__name__}); are the tables created? "
            "Run 'flask rpc init-db' or your migrations."
        ) from None


def _get(db: Any, model: type, name: str) -> Any:
    user = db.session.execute(
        sa.select(model).where(model.username == name)  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"no API user named {name!r}")
    return user


def _fmt(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


users_group = AppGroup("users", help="Manage API users (HMAC authentication).")


@users_group.command("create")
@click.argument("name")
@click.option("--inactive", is_flag=True, help="Create the user deactivated.")
@click.option(
    "--key-from-stdin",
    is_flag=True,
    help="Keep an existing key, read from the first line of standard input "
    "(for users moved from django-rpcenable).",
)
def create_command(name: str, inactive: bool, key_from_stdin: bool) -> None:
    """Create API user NAME and print its key (shown only this once)."""
    imported = None
    if key_from_stdin:
        imported = sys.stdin.readline().strip()
    with _database() as (db, model):
        try:
            user, api_key = create_api_user(
                db, model, name, active=not inactive, api_key=imported
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Created API user {user.username!r}{' (inactive)' if inactive else ''}.")
        if imported is None:
            click.echo(f"API key (shown only this once): {api_key}")
        else:
            click.echo("The given API key is stored encrypted.")


@users_group.command("list")
def list_command() -> None:
    """List the API users (keys are never shown)."""
    with _database() as (db, model):
        users = db.session.execute(
            sa.select(model).order_by(model.username)  # type: ignore[attr-defined]
        ).scalars()
        rows = [
            (u.username, "yes" if u.active else "no", _fmt(u.last_login), _fmt(u.created_at))
            for u in users
        ]
    header = ("USERNAME", "ACTIVE", "LAST LOGIN", "CREATED")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _set_active(active: bool) -> Callable[[str], None]:
    def command(name: str) -> None:
        with _database() as (db, model):
            user = _get(db, model, name)
            user.active = active
            db.session.commit()
        click.echo(f"API user {name!r} {'activated' if active else 'deactivated'}.")

    return command


users_group.command("deactivate", help="Deactivate API user NAME (its calls get fault 406).")(
    click.argument("name")(_set_active(False))
)
users_group.command("activate", help="Activate API user NAME again.")(
    click.argument("name")(_set_active(True))
)


@users_group.command("rotate-key")
@click.argument("name")
def rotate_key_command(name: str) -> None:
    """Give API user NAME a new key and print it; the old key stops working."""
    with _database() as (db, model):
        user = _get(db, model, name)
        api_key = user.regenerate_api_key()
        db.session.commit()
    click.echo(f"New API key of {name!r} (shown only this once): {api_key}")


@users_group.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt all stored keys under the current RPCENABLE_SECRET_KEY.

    Run it after moving the old secret to RPCENABLE_SECRET_KEY_FALLBACKS;
    afterwards the old secret can be dropped.
    """
    with _database() as (db, model):
        try:
            count = reencrypt_keys(db, model)
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Re-encrypted {count} API key(s).")
