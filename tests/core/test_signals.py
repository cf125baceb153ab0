"""The blinker signals sent around every call, over real HTTP."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
from core_helpers import new_app, post, proxy, running

from flask_rpcenable import Fault, RPCEnable, signals
from flask_rpcenable.errors import APPLICATION_ERROR, METHOD_NOT_FOUND, NOT_WELL_FORMED


class Boom(Exception):
    pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = new_app(tmp_path_factory.mktemp("signals"))
    rpc = RPCEnable()

    @rpc.register
    def add(a: int, b: int) -> int:
        return a + b

    @rpc.register
    def fail() -> None:
        raise Boom("kaput")

    @rpc.register
    def refuse() -> None:
        raise Fault(7, "no")

    @rpc.register(name="math.add", version=2)
    def add2(a: int, b: int) -> int:
        return a + b

    rpc.init_app(app)
    with running(app) as base:
        yield app, base + "/rpc/"


@pytest.fixture
def events(served) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    app, _ = served
    seen: list[tuple[str, dict[str, Any]]] = []
    senders: list[Any] = []

    def receiver(name: str) -> Any:
        def receive(sender: Any, **extra: Any) -> None:
            # Checked here, outside the receiver: an assert failing inside one
            # would be swallowed (a broken receiver never changes the call).
            senders.append(sender)
            seen.append((name, extra))

        return receive

    receivers = {
        signals.call_started: receiver("started"),
        signals.call_finished: receiver("finished"),
        signals.call_failed: receiver("failed"),
    }
    for signal, function in receivers.items():
        signal.connect(function, sender=app)
    try:
        yield seen
    finally:
        for signal, function in receivers.items():
            signal.disconnect(function, sender=app)
    assert all(sender is app for sender in senders)


@pytest.fixture
def url(served) -> str:
    return served[1]


def test_successful_call(url, events):
    with proxy(url) as server:
        assert server.add(2, 3) == 5
    assert [name for name, _ in events] == ["started", "finished"]
    started, finished = events[0][1], events[1][1]
    assert started == {"method": "add", "version": None, "params": [2, 3]}
    assert finished["method"] == "add" and finished["params"] == [2, 3]
    assert finished["result"] == 5
    assert isinstance(finished["duration"], float) and 0 < finished["duration"] < 5


def test_versioned_call(url, events):
    with proxy(url + "v2/") as server:
        assert server.math.add(1, 1) == 2
    assert events[0][1]["version"] == 2 and events[1][1]["version"] == 2


def test_exception_reaches_receivers_unchanged(url, events):
    with proxy(url) as server, pytest.raises(xmlrpc.client.Fault):
        server.fail()
    assert [name for name, _ in events] == ["started", "failed"]
    failed = events[1][1]
    assert failed["method"] == "fail"
    assert isinstance(failed["exception"], Boom)
    assert str(failed["exception"]) == "kaput"
    assert failed["duration"] >= 0


def test_user_fault(url, events):
    with proxy(url) as server, pytest.raises(xmlrpc.client.Fault):
        server.refuse()
    failed = events[-1][1]
    assert events[-1][0] == "failed"
    assert isinstance(failed["exception"], Fault) and failed["exception"].faultCode == 7


def test_unknown_method_fails_without_starting(url, events):
    with proxy(url) as server, pytest.raises(xmlrpc.client.Fault):
        server.nope(1)
    assert [name for name, _ in events] == ["failed"]
    assert events[0][1]["exception"].faultCode == METHOD_NOT_FOUND
    assert events[0][1]["params"] == [1]


def test_rejected_request(url, events):
    assert post(url, b"<garbage").status == 200
    assert [name for name, _ in events] == ["failed"]
    assert events[0][1]["method"] == "-"
    assert events[0][1]["exception"].faultCode == NOT_WELL_FORMED


def test_multicall_signals_each_sub_call(url, events):
    with proxy(url) as server:
        server.system.multicall(
            [{"methodName": "add", "params": [1, 2]}, {"methodName": "fail", "params": []}]
        )
    assert [(name, extra["method"]) for name, extra in events] == [
        ("started", "system.multicall"),
        ("started", "add"),
        ("finished", "add"),
        ("started", "fail"),
        ("failed", "fail"),
        ("finished", "system.multicall"),
    ]


def test_signals_of_other_apps_are_not_received(url, events, tmp_path):
    other = new_app(tmp_path)
    rpc = RPCEnable()

    @rpc.register
    def ping() -> str:
        return "pong"

    rpc.init_app(other)
    with running(other) as base, proxy(base + "/rpc/") as server:
        assert server.ping() == "pong"
    assert events == []


def test_a_broken_receiver_does_not_break_the_call(served, url, caplog):
    app, _ = served

    def broken(sender: Any, **extra: Any) -> None:
        raise RuntimeError("receiver bug")

    with signals.call_finished.connected_to(broken, sender=app), proxy(url) as server:
        assert server.add(1, 2) == 3
    assert "receiver bug" in caplog.text


def test_a_broken_start_receiver_is_an_application_error(served, url):
    app, _ = served

    def broken(sender: Any, **extra: Any) -> None:
        raise RuntimeError("start receiver bug")

    with (
        signals.call_started.connected_to(broken, sender=app),
        proxy(url) as server,
        pytest.raises(xmlrpc.client.Fault) as excinfo,
    ):
        server.add(1, 2)
    assert excinfo.value.faultCode == APPLICATION_ERROR
    with proxy(url) as server:
        assert server.add(1, 2) == 3
