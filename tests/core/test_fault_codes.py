"""Every fault code of the wire contract over real HTTP: malformed and invalid requests, unknown
methods and bad parameters, results that cannot be encoded, crashes and the user's own faults."""

from __future__ import annotations

import logging
import xmlrpc.client
from typing import Any

import pytest
from core_helpers import call_body, new_app, post, proxy, raw_call, running
from faults_helpers import SECRET, CustomError, fault_of, make_rpc, serving

from flask_rpcenable import signals
from flask_rpcenable.calls import CallRecord
from flask_rpcenable.errors import (
    APPLICATION_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_WELL_FORMED,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("faults")) as served:
        yield served


# -- -32700 / -32600 ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml at all", b"<methodCall><methodName>add</methodName>", b"<a></b>", b"\x00\x01"],
)
def test_not_well_formed(url, records, body):
    reply = post(url, body)
    assert reply.status == 200
    assert reply.fault().faultCode == NOT_WELL_FORMED
    assert [(r.method, r.fault_code) for r in records] == [("-", NOT_WELL_FORMED)]
    assert post(url, call_body("add", 1, 1)).loads() == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<methodResponse><params/></methodResponse>", "root element"),
        (b"<methodCall><params/></methodCall>", "methodName"),
        (b"<methodCall><methodName></methodName></methodCall>", "methodName"),
        (b"<methodCall><methodName>a b</methodName></methodCall>", "methodName"),
        (b"<methodCall><methodName>add</methodName><params><x/></params></methodCall>", "param"),
        (raw_call("add", "<int>1</int><int>2</int>"), "exactly one"),
        (raw_call("add", "<float>1</float>"), "unknown XML-RPC type"),
        (raw_call("add", "<array><value/></array>"), "<data>"),
        (raw_call("add", "<struct><member><name>a</name></member></struct>"), "member"),
        (raw_call("add", "<int><b/></int>"), "cannot contain"),
    ],
)
def test_invalid_request(url, records, body, words):
    fault = post(url, body).fault()
    assert fault.faultCode == INVALID_REQUEST
    assert words in fault.faultString
    assert records[-1].method == "-" and records[-1].fault_code == INVALID_REQUEST
    assert post(url, call_body("add", 1, 1)).loads() == 2


@pytest.mark.parametrize(
    "raw",
    [
        "<int>12x</int>",
        "<int>1_000</int>",
        "<int>2147483648</int>",
        "<i4>-2147483649</i4>",
        "<int></int>",
        "<i8>9223372036854775808</i8>",
        "<i8>0x10</i8>",
        "<boolean>yes</boolean>",
        "<boolean>2</boolean>",
        "<double>1,5</double>",
        "<double>0x1p3</double>",
        "<double>1_0</double>",
        "<base64>not*base64!</base64>",
        "<base64>aGk</base64>",
        "<dateTime.iso8601>yesterday</dateTime.iso8601>",
        "<dateTime.iso8601>20241332T25:61:61</dateTime.iso8601>",
        "<dateTime.iso8601>" + "1" * 100 + "</dateTime.iso8601>",
    ],
)
def test_invalid_values(url, raw):
    fault = post(url, raw_call("add", raw, "<int>1</int>")).fault()
    assert fault.faultCode == INVALID_REQUEST
    assert "invalid" in fault.faultString
    assert post(url, call_body("add", 1, 1)).loads() == 2


# -- -32601 / -32602 ------------------------------------------------------------


def test_method_not_found(url, records):
    fault = fault_of(url, "nope")
    assert fault.faultCode == METHOD_NOT_FOUND
    assert "nope" in fault.faultString
    assert records[0].method == "nope" and records[0].fault_code == METHOD_NOT_FOUND


def test_versioned_method_is_not_in_the_default_namespace(url):
    assert fault_of(url, "math.add", 1, 2).faultCode == METHOD_NOT_FOUND
    with proxy(url + "v2/") as v2:
        assert v2.math.add(1, 2) == 3
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            v2.add(1, 2)
    assert excinfo.value.faultCode == METHOD_NOT_FOUND


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ((1,), "expected 2 parameters, got 1"),
        ((1, 2, 3), "expected 2 parameters, got 3"),
        ((), "expected 2 parameters, got 0"),
        (("1", 2), "parameter 'a' expects int, got string"),
        ((1, 2.5), "parameter 'b' expects int, got double"),
        ((True, 2), "parameter 'a' expects int, got boolean"),
        (([1], 2), "parameter 'a' expects int, got array"),
    ],
)
def test_invalid_params_names_method_and_signature(url, records, params, words):
    fault = fault_of(url, "add", *params)
    assert fault.faultCode == INVALID_PARAMS
    assert fault.faultString.startswith("add(a: int, b: int) -> int: ")
    assert words in fault.faultString
    assert records[0].fault_code == INVALID_PARAMS


def test_invalid_params_optional_arity(url):
    fault = fault_of(url, "greet")
    assert fault.faultCode == INVALID_PARAMS
    assert "greet(name: str, punctuation: str = '!') -> str" in fault.faultString
    assert "expected 1 to 2 parameters, got 0" in fault.faultString
    with proxy(url) as server:
        assert server.greet("you") == "Hello you!"
        assert server.greet("you", "?") == "Hello you?"


def test_int_is_accepted_for_float(url):
    with proxy(url) as server:
        assert server.scale(3) == 6.0
        assert server.scale(1.5, 3) == 4.5
    assert fault_of(url, "scale", "3").faultCode == INVALID_PARAMS


# -- -32603 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["object", "set", "huge", "key", "control", "control-key", "surrogate"]
)
def test_unencodable_result_is_internal_error_and_recorded_as_such(url, records, kind):
    failed: list[dict[str, Any]] = []
    finished: list[Any] = []

    def on_failed(sender, **extra):
        failed.append(extra)

    def on_finished(sender, **extra):
        finished.append(extra)

    with signals.call_failed.connected_to(on_failed), signals.call_finished.connected_to(
        on_finished
    ):
        fault = fault_of(url, "unencodable", kind)
    assert fault.faultCode == INTERNAL_ERROR
    assert "object at 0x" not in fault.faultString
    record = records[0]
    assert record.method == "unencodable"
    assert record.fault_code == INTERNAL_ERROR and not record.ok
    assert record.fault_string == fault.faultString
    assert [f["method"] for f in failed] == ["unencodable"]
    assert [f["method"] for f in finished] == ["add"]  # only the follow-up call


def test_user_fault_with_invalid_code_becomes_internal_error(url):
    fault = fault_of(url, "odd_fault")
    assert fault.faultCode == INTERNAL_ERROR
    assert fault.faultString == "odd code"


# -- -32500 and user faults ----------------------------------------------------------


def test_application_error_hides_everything_and_logs_the_traceback(url, records, caplog):
    caplog.set_level(logging.ERROR, logger="testapp")
    reply = post(url, call_body("crash"))
    fault = reply.fault()
    assert fault.faultCode == APPLICATION_ERROR
    for leak in (SECRET, "CustomError", "Traceback", "database", "test_core_faults"):
        assert leak not in fault.faultString
        assert leak.encode() not in reply.body
    logged = [r for r in caplog.records if r.name == "testapp" and r.exc_info]
    assert logged, caplog.records
    assert logged[-1].exc_info[0] is CustomError
    assert SECRET in caplog.text and "Traceback" in caplog.text
    record = records[0]
    assert record.fault_code == APPLICATION_ERROR
    assert SECRET in (record.traceback or "") and "CustomError" in record.traceback
    assert post(url, call_body("add", 2, 2)).loads() == 4


@pytest.mark.parametrize("code", [42, 1, -1, 0, 401, -32601])
def test_user_fault_passes_through_unchanged(url, records, code):
    fault = fault_of(url, "refuse", code)
    assert (fault.faultCode, fault.faultString) == (code, "You shall not pass")
    assert (records[0].fault_code, records[0].fault_string) == (code, "You shall not pass")
    assert records[0].traceback is None


def test_a_bug_before_parsing_is_an_application_error_not_a_500(tmp_path, caplog):
    """Whatever goes wrong in the request checks, the client gets a fault."""
    app = new_app(tmp_path)
    rpc = make_rpc()
    rpc.init_app(app)
    dispatcher = rpc.state(app).dispatcher
    records: list[CallRecord] = []
    dispatcher.recorders.append(records.append)

    class BrokenAuthenticator:
        signature_prefix = ()
        help_text = ""

        def verify_request(self, ctx: Any) -> None:
            raise KeyError(SECRET)

    dispatcher.authenticator = BrokenAuthenticator()  # type: ignore[assignment]
    with running(app) as base:
        # It checks requests that carry an Authorization header.
        reply = post(base + "/rpc/", call_body("add", 1, 2), {"Authorization": "RPC-HMAC x"})
    fault = reply.fault()
    assert fault.faultCode == APPLICATION_ERROR
    assert SECRET.encode() not in reply.body
    assert SECRET in caplog.text
    assert [(r.method, r.fault_code) for r in records] == [("-", APPLICATION_ERROR)]
