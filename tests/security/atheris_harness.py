"""An atheris harness for the XML-RPC codec and the dispatcher (issue 14, item 7).

Not a test module: ``.ci/run`` runs it for a bounded time::

    python tests/security/atheris_harness.py -max_total_time=60

Each input goes to :func:`decode_request` (which must return a call or raise
:class:`RPCError`, nothing else) and, through the WSGI test client, to the
endpoint (which must answer with a status below 500). Any other exception or
a 500 is a crash: atheris stops and prints the input.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from flask import Flask

    from flask_rpcenable.errors import RPCError
    from flask_rpcenable.protocols.xmlrpc_codec import decode_request

from fuzz_app import fuzz_rpc  # noqa: E402  (after the instrumented imports)


def make_app() -> Flask:
    app = Flask("fuzz", instance_path=tempfile.mkdtemp())
    app.config.update(
        SECRET_KEY="fuzz-secret-0123456789",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        RPCENABLE_ADMIN_ENABLED=False,
        RPCENABLE_LOG_INCOMING=True,
    )
    rpc = fuzz_rpc()
    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
    return app


APP = make_app()
CLIENT = APP.test_client()
CONTENT_TYPES = ["text/xml", "application/xml", "application/json", None]


def one_input(data: bytes) -> None:
    with contextlib.suppress(RPCError):  # a call or RPCError: anything else is a crash
        decode_request(data)
    content_type = CONTENT_TYPES[data[0] % len(CONTENT_TYPES)] if data else None
    response = CLIENT.post("/rpc/", data=data, content_type=content_type)
    if response.status_code >= 500:
        raise RuntimeError(f"HTTP {response.status_code} for {data[:200]!r}")


def main() -> None:
    seeds = [
        b"<?xml version='1.0'?><methodCall><methodName>echo</methodName><params><param>"
        b"<value><string>hi</string></value></param></params></methodCall>",
    ]
    if all(arg.startswith("-") for arg in sys.argv[1:]):  # no corpus given: seed one
        corpus = tempfile.mkdtemp()
        for i, seed in enumerate(seeds):
            with open(f"{corpus}/seed{i}", "wb") as out:
                out.write(seed)
        sys.argv.append(corpus)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
