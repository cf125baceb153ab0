"""system.multicall over real HTTP: results and faults in place, one record per entry, refused
entries, the limit on the number of calls, and the envelope's redacted record."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest
from core_helpers import new_app, proxy, running
from faults_helpers import SECRET, fault_of, make_rpc, serving

from flask_rpcenable import signals
from flask_rpcenable.calls import CallRecord
from flask_rpcenable.errors import (
    APPLICATION_ERROR,
    APPLICATION_ERROR_MESSAGE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("multicall")) as served:
        yield served


def test_multicall_results_and_faults_in_place(url, records):
    calls = [
        {"methodName": "add", "params": [1, 2]},
        {"methodName": "nope", "params": []},
        {"methodName": "greet", "params": ["x"]},
        {"methodName": "add", "params": ["x", 1]},
        {"methodName": "crash"},
    ]
    with proxy(url) as server:
        results = server.system.multicall(calls)
    assert results[0] == [3]
    assert results[1]["faultCode"] == METHOD_NOT_FOUND
    assert results[2] == ["Hello x!"]
    assert results[3]["faultCode"] == INVALID_PARAMS
    assert results[4] == {
        "faultCode": APPLICATION_ERROR,
        "faultString": APPLICATION_ERROR_MESSAGE,
    }
    assert SECRET not in results[4]["faultString"]
    # one record per sub-call, then one for the envelope
    assert [(r.method, r.multicall_index, r.fault_code) for r in records] == [
        ("add", 0, None),
        ("nope", 1, METHOD_NOT_FOUND),
        ("greet", 2, None),
        ("add", 3, INVALID_PARAMS),
        ("crash", 4, APPLICATION_ERROR),
        ("system.multicall", None, None),
    ]


def test_multicall_with_the_stdlib_helper(url):
    with proxy(url) as server:
        multi = xmlrpc.client.MultiCall(server)
        multi.add(2, 3)
        multi.refuse(7)
        multi.greet("y", ".")
        results = multi()
        assert results[0] == 5
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            results[1]
        assert excinfo.value.faultCode == 7
        assert results[2] == "Hello y."


def test_multicall_unencodable_sub_result_is_a_fault_in_place(url, records):
    with proxy(url) as server:
        results = server.system.multicall(
            [
                {"methodName": "unencodable", "params": ["object"]},
                {"methodName": "add", "params": [1, 1]},
            ]
        )
    assert results[0]["faultCode"] == INTERNAL_ERROR
    assert results[1] == [2]
    assert records[0].fault_code == INTERNAL_ERROR and records[0].multicall_index == 0


def test_multicall_nested_is_refused(url, records):
    with proxy(url) as server:
        results = server.system.multicall(
            [
                {"methodName": "system.multicall", "params": [[{"methodName": "add"}]]},
                {"methodName": "add", "params": [4, 4]},
            ]
        )
    assert results[0]["faultCode"] == INVALID_REQUEST
    assert "nested" in results[0]["faultString"]
    assert results[1] == [8]


@pytest.mark.parametrize(
    "entry", ["add", {"params": [1, 2]}, {"methodName": 5}, {"methodName": "add", "params": 3}]
)
def test_multicall_malformed_entry_is_a_fault_in_place(url, entry):
    with proxy(url) as server:
        results = server.system.multicall([entry, {"methodName": "add", "params": [0, 1]}])
    assert results[0]["faultCode"] == INVALID_REQUEST
    assert results[1] == [1]


def test_multicall_over_the_limit_is_refused(url, records):
    calls = [{"methodName": "add", "params": [i, i]} for i in range(6)]
    fault = fault_of(url, "system.multicall", calls)
    assert fault.faultCode == INVALID_PARAMS
    assert "at most 5" in fault.faultString
    # none of the sub-calls ran
    assert [r.method for r in records] == ["system.multicall", "add"]
    with proxy(url) as server:
        assert len(server.system.multicall(calls[:5])) == 5


@pytest.mark.parametrize("params", [(), ("x",), ([], [])])
def test_multicall_wrong_params(url, params):
    assert fault_of(url, "system.multicall", *params).faultCode == INVALID_PARAMS


def test_multicall_empty(url):
    with proxy(url) as server:
        assert server.system.multicall([]) == []


def test_multicall_record_redacts_auth_arguments_of_sub_calls(tmp_path):
    """The envelope's params must not carry the nonces and signatures of its sub-calls."""
    app = new_app(tmp_path)
    rpc = make_rpc()

    @rpc.register
    @rpc.auth
    def guarded(user: Any, payload: str) -> str:
        return payload

    rpc.init_app(app)
    records: list[CallRecord] = []
    started: list[Any] = []
    rpc.state(app).dispatcher.recorders.append(records.append)
    auth_args = ["NONCE-abcdefghijklmnop", "1700000000", "alice", "f" * 64]
    calls = [
        {"methodName": "guarded", "params": [*auth_args, "visible payload"]},
        {"methodName": "add", "params": [1, 2]},
    ]

    def on_started(sender: Any, **extra: Any) -> None:
        started.append(extra["params"])

    with (
        signals.call_started.connected_to(on_started, sender=app),
        running(app) as base,
        proxy(base + "/rpc/") as server,
    ):
        results = server.system.multicall(calls)
    assert "faultCode" in results[0]  # not authenticated: the arguments are made up
    assert results[1] == [3]
    envelope = records[-1]
    assert envelope.method == "system.multicall"
    logged = repr(envelope.params) + repr(records[0].params) + repr(started)
    for secret in (auth_args[0], auth_args[3]):
        assert secret not in logged
    assert envelope.params[0][0]["params"][-1] == "visible payload"
    assert envelope.params[0][1] == {"methodName": "add", "params": [1, 2]}
