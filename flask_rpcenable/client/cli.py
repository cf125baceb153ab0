"""``flask rpc call URL METHOD [ARGS...]``: call a remote XML-RPC (or, with
``--json``, JSON-RPC 2.0) method.

The same command without a Flask app is ``rpcenable call`` (see
:mod:`flask_rpcenable.client.console`); both are built from :func:`call_options`
and :func:`run_call`.

Each argument is read as a JSON literal (``42``, ``true``, ``null``,
``"text"``, ``[1, 2]``, ``{"a": 1}``); a word that is not valid JSON is
sent as a string, and ``--strings`` sends every argument as a string. The
result is printed as JSON (binary data as base64 text, dates as ISO 8601).

Exit status: 0 on success, 1 when the server answered with a fault (printed
on stderr), 2 for a usage error, 3 when the call failed on the way
(connection, timeout, HTTP status, unreadable response).

With ``--user``, the API key is read from the environment variable named by
``--key-env`` (``RPCENABLE_CALL_API_KEY`` by default), never from the
command line, where other users could see it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import xmlrpc.client
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask.cli import with_appcontext

from .errors import TransportError
from .jsonrpc import JSONRPCPoint
from .point import XMLRPCPoint

__all__ = [
    "EXIT_FAULT",
    "EXIT_TRANSPORT",
    "call_options",
    "parse_argument",
    "run_call",
    "to_json",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status when the server answered with a fault.
EXIT_FAULT = 1
#: Exit status when the call failed on the way (click uses 2 for usage errors).
EXIT_TRANSPORT = 3
#: The environment variable read for the API key by default.
DEFAULT_KEY_ENV = "RPCENABLE_CALL_API_KEY"


def parse_argument(text: str, *, as_string: bool = False) -> Any:
    """One command-line argument as a call parameter: a JSON literal, or the
    text itself when it is not valid JSON (or ``as_string`` is set)."""
    if as_string:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json_default(value: Any) -> Any:
    if isinstance(value, xmlrpc.client.Binary):
        value = value.data
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, xmlrpc.client.DateTime):
        try:
            return datetime.datetime.strptime(value.value, "%Y%m%dT%H:%M:%S").isoformat()
        except ValueError:
            return value.value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return repr(value)


def to_json(value: Any) -> str:
    """A call result as indented JSON text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)


def call_options(function: F) -> F:
    """Add the arguments and options shared by ``flask rpc call`` and
    ``rpcenable call`` to a click command taking ``ctx`` first."""
    decorators = [
        click.argument("url"),
        click.argument("method"),
        click.argument("args", nargs=-1),
        click.option("--user", "-u", help="API user to sign the call as."),
        click.option(
            "--key-env",
            default=DEFAULT_KEY_ENV,
            show_default=True,
            metavar="NAME",
            help="Environment variable holding the API key of --user.",
        ),
        click.option(
            "--scheme",
            type=click.Choice(["v1", "v2"]),
            default="v2",
            show_default=True,
            help="Auth scheme: v2 (Authorization header) or v1 (django-rpcenable parameters).",
        ),
        click.option("--timeout", type=float, default=30.0, show_default=True,
                     help="Connect and read timeout in seconds."),
        click.option("--cafile", type=click.Path(exists=True, dir_okay=True),
                     help="Verify HTTPS against this CA file or directory."),
        click.option("--insecure", is_flag=True,
                     help="Do not verify HTTPS certificates (testing only)."),
        click.option("--strings", "-s", is_flag=True, help="Send every argument as a string."),
        click.option("--json", "use_json", is_flag=True,
                     help="Call over JSON-RPC 2.0 instead of XML-RPC."),
        click.pass_context,
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def run_call(
    ctx: click.Context,
    url: str,
    method: str,
    args: tuple[str, ...],
    user: str | None,
    key_env: str,
    scheme: str,
    timeout: float,
    cafile: str | None,
    insecure: bool,
    strings: bool,
    use_json: bool = False,
) -> None:
    """Make the call the options describe, print the result, and exit with
    the status listed in this module's docstring."""
    auth = None
    if user:
        api_key = os.environ.get(key_env)
        if not api_key:
            raise click.UsageError(
                f"--user needs the API key in the environment variable {key_env}"
            )
        auth = (user, api_key)
    if insecure and cafile:
        raise click.UsageError("--insecure and --cafile exclude each other")
    verify: bool | str = False if insecure else (cafile or True)
    params = tuple(parse_argument(arg, as_string=strings) for arg in args)
    point: XMLRPCPoint | JSONRPCPoint
    try:
        if use_json:
            point = JSONRPCPoint(
                url, auth=auth, auth_scheme=scheme, timeout=timeout, verify=verify
            )
        else:
            point = XMLRPCPoint(
                url, auth=auth, auth_scheme=scheme, timeout=timeout, verify=verify,
                use_builtin_types=True,
            )
    except (ValueError, TypeError, OSError) as exc:  # bad URL, bad CA file
        raise click.UsageError(str(exc)) from None
    with point:
        try:
            result = point[method](*params)
        except xmlrpc.client.Fault as fault:
            click.echo(f"Fault {fault.faultCode}: {fault.faultString}", err=True)
            ctx.exit(EXIT_FAULT)
        except TransportError as exc:
            click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
            ctx.exit(EXIT_TRANSPORT)
        except (ValueError, TypeError, OverflowError) as exc:
            raise click.UsageError(f"cannot send this call: {exc}") from None
    click.echo(to_json(result))


@click.command("call")
@with_appcontext
@call_options
def call_command(ctx: click.Context, **options: Any) -> None:
    """Call METHOD at URL with ARGS (JSON literals) and print the result as JSON.

    \b
    Put -- before arguments that start with a dash:
      flask rpc call URL math.add -- -1 2
    Exit status: 0 success, 1 fault, 2 usage error, 3 transport error.
    The call is logged when the app has RPCENABLE_LOG_OUTGOING on.
    """
    run_call(ctx, **options)
