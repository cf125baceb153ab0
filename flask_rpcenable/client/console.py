"""The ``rpcenable`` console script: calls from a terminal, no Flask app needed.

``pip install flask-rpcenable`` installs it::

    rpcenable call http://127.0.0.1:5000/rpc/ echo Hi
    rpcenable call http://127.0.0.1:5000/rpc/v2/ math.add 1 2
    python -m flask_rpcenable.client.console call URL METHOD [ARGS...]

``rpcenable call`` takes exactly the arguments and options of ``flask rpc
call`` (they are defined once, in :mod:`flask_rpcenable.client.cli`) and
exits with the same status. Without an app there is no call log.
"""

from __future__ import annotations

from typing import Any

import click

from .cli import call_options, run_call

__all__ = ["main"]


@click.group(name="rpcenable")
@click.version_option(package_name="flask-rpcenable", prog_name="flask-rpcenable")
def main() -> None:
    """flask-rpcenable from the command line, without a Flask app."""


@main.command("call")
@call_options
def call_command(ctx: click.Context, **options: Any) -> None:
    """Call METHOD at URL with ARGS (JSON literals) and print the result as JSON.

    \b
    Put -- before arguments that start with a dash:
      rpcenable call URL math.add -- -1 2
    Exit status: 0 success, 1 fault, 2 usage error, 3 transport error.
    No call log is written (there is no app).
    """
    run_call(ctx, **options)


if __name__ == "__main__":
    main()
