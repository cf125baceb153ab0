"""Decode speed of the codec against the standard library; run by hand.

    python benchmarks/bench_codec.py

Not collected by pytest (it is no ``test_*.py`` and lives outside
``tests/``). Every number is the best of several runs, measured in this
process, so the ratios compare like with like on whatever machine runs it.
"""

from __future__ import annotations

import datetime
import platform
import tempfile
import timeit
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher

from flask import Flask

from flask_rpcenable import RPCEnable
from flask_rpcenable.xmlrpc import decode_request, encode_response


def make_request(target_size: int = 800_000) -> bytes:
    """A ``methodCall`` of about ``target_size`` bytes with every common type."""
    record = {
        "id": 123456,
        "name": "Ada Lovelace <ada@example.org>",
        "score": 98.25,
        "active": True,
        "tags": ["alpha", "beta", "gamma"],
        "created": datetime.datetime(2024, 5, 17, 12, 30, 45),
        "blob": b"\x00\x01binary payload\xff",
        "nested": {"a": 1, "b": [1, 2, 3], "c": "é ü ✓"},
    }
    one = len(xmlrpc.client.dumps(([record],), "import_records"))
    count = max(1, target_size // (one - 120))
    records = [dict(record, id=i) for i in range(count)]
    return xmlrpc.client.dumps((records,), "import_records").encode("utf-8")


def best(func: Callable[[], Any], number: int = 5, repeat: int = 7) -> float:
    """Best time of one call, in seconds."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number


def stdlib_loads(body: bytes) -> Any:
    return xmlrpc.client.loads(body, use_builtin_types=True)


def defused_loads(body: bytes) -> Any:
    from defusedxml.xmlrpc import DefusedExpatParser

    unmarshaller = xmlrpc.client.Unmarshaller(use_builtin_types=True)
    parser = DefusedExpatParser(unmarshaller)
    parser.feed(body)
    parser.close()
    return unmarshaller.close(), unmarshaller.getmethodname()


def main() -> None:
    body = make_request()
    print(f"Python {platform.python_version()} on {platform.machine()}; "
          f"request: {len(body) / 1e6:.2f} MB")
    assert decode_request(body).params == list(stdlib_loads(body)[0])

    print("\nDecoding the request (bytes -> method and params)")
    baseline = best(lambda: stdlib_loads(body))
    rows = [("xmlrpc.client.loads (stdlib)", baseline)]
    try:
        defused_loads(body)
    except ImportError:
        print("  defusedxml is not installed: skipped")
    else:
        rows.append(("defusedxml.xmlrpc parser", best(lambda: defused_loads(body))))
    rows.append(("flask_rpcenable decode_request", best(lambda: decode_request(body))))
    for name, seconds in rows:
        print(f"  {name:38s} {seconds * 1000:8.2f} ms   x{seconds / baseline:5.2f} of stdlib")

    params = stdlib_loads(body)[0]
    print("\nEncoding the same data as a response")
    enc_base = best(lambda: xmlrpc.client.dumps(params, methodresponse=True))
    enc_ours = best(lambda: encode_response(params[0], use_i8=True))
    print(f"  {'xmlrpc.client.dumps (stdlib)':38s} {enc_base * 1000:8.2f} ms   x 1.00 of stdlib")
    print(f"  {'flask_rpcenable encode_response':38s} {enc_ours * 1000:8.2f} ms"
          f"   x{enc_ours / enc_base:5.2f} of stdlib")

    print("\nA full request (decode, call, encode) of a function returning len(records)")
    dispatcher = SimpleXMLRPCDispatcher(allow_none=True, use_builtin_types=True)
    dispatcher.register_function(len, "import_records")
    plain = best(lambda: dispatcher._marshaled_dispatch(body))

    with tempfile.TemporaryDirectory() as tmp:
        app = Flask("bench", instance_path=str(Path(tmp) / "instance"))
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        rpc = RPCEnable()
        rpc.register(name="import_records")(len)
        rpc.init_app(app)
        client = app.test_client()

        def flask_call() -> bytes:
            return client.post("/rpc/", data=body, content_type="text/xml").data

        assert b"<int>" in flask_call()
        ours = best(flask_call)
    print(f"  {'SimpleXMLRPCDispatcher (no HTTP)':38s} {plain * 1000:8.2f} ms   x 1.00")
    print(f"  {'flask-rpcenable via Flask test client':38s} {ours * 1000:8.2f} ms"
          f"   x{ours / plain:5.2f}")


if __name__ == "__main__":
    main()
