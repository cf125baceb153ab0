"""The extension object: registration, app factories, several objects and apps,
app context, async functions and CSRF, over real HTTP."""

from __future__ import annotations

import asyncio
import functools
import xmlrpc.client
from typing import Any

import pytest
from core_helpers import call_body, new_app, post, proxy, running
from flask import current_app, g, request
from flask_wtf.csrf import CSRFProtect

from flask_rpcenable import RPCEnable
from flask_rpcenable.calls import CallRecord
from flask_rpcenable.errors import METHOD_NOT_FOUND

# -- registration --------------------------------------------------------------------


def test_bare_and_called_register_return_the_function_unchanged(rpc):
    def plain(x: int) -> int:
        return x + 1

    def named(x: int) -> int:
        return x * 2

    assert rpc.register(plain) is plain
    decorator = rpc.register(name="math.double", version=3)
    assert decorator(named) is named
    assert plain(1) == 2 and named(2) == 4  # still plain Python functions
    assert rpc.registry.get("plain", None).func is plain
    assert rpc.registry.get("math.double", 3).func is named
    assert rpc.registry.get("math.double", None) is None


def test_decorator_syntax(rpc):
    @rpc.register
    def one() -> int:
        return 1

    @rpc.register()
    def two() -> int:
        return 2

    @rpc.register(name="three")
    async def three_async() -> int:
        return 3

    assert one() == 1 and two() == 2
    assert asyncio.run(three_async()) == 3
    assert [p.name for p in rpc.registry.methods(None)] == ["one", "three", "two"]


def test_duplicate_name_is_refused(rpc):
    @rpc.register
    def echo(x: str) -> str:
        return x

    def other(x: str) -> str:
        return x

    with pytest.raises(ValueError, match="'echo' is already registered in the default namespace"):
        rpc.register(name="echo")(other)
    # the same name in another version is another namespace
    assert rpc.register(name="echo", version=2)(other) is other
    with pytest.raises(ValueError, match="version 2"):
        rpc.register(name="echo", version=2)(echo)
    assert rpc.registry.get("echo", None).func is echo


@pytest.mark.parametrize(
    "name", ["system.mine", "1abc", "a b", "a..b", "a.", "", "x" * 256, "ünï"]
)
def test_invalid_names_are_refused(rpc, name):
    with pytest.raises(ValueError):
        rpc.register(name=name)(lambda: None)


@pytest.mark.parametrize("version", [-1, "2", 1.5, True])
def test_invalid_versions_are_refused(rpc, version):
    with pytest.raises(TypeError):
        rpc.register(version=version)(lambda: None)


def test_callables_without_a_name_need_one(rpc):
    def power(base: int, exponent: int) -> int:
        return base**exponent

    square = functools.partial(power, exponent=2)
    with pytest.raises(TypeError, match="name="):
        rpc.register(square)
    assert rpc.register(name="square")(square) is square
    checker = rpc.registry.get("square", None).checker
    assert checker.display == "(base: int, *, exponent: int = 2) -> int"


def test_keyword_only_without_default_is_refused(rpc):
    def f(*, x: int) -> int:
        return x

    with pytest.raises(TypeError, match="keyword-only"):
        rpc.register(f)


def test_functions_registered_after_init_app_are_served(make_app, rpc):
    app = make_app()
    rpc.init_app(app)

    @rpc.register
    def late(x: int) -> int:
        return x * 10

    @rpc.register(name="later", version=4)
    def later() -> str:
        return "v4"

    with running(app) as base, proxy(base + "/rpc/") as server, proxy(base + "/rpc/v4/") as v4:
        assert server.late(4) == 40
        assert "late" in server.system.listMethods()
        assert v4.later() == "v4"


# -- init_app misuse ---------------------------------------------------------------------


def test_init_app_twice_is_a_runtime_error(make_app, rpc):
    app = make_app()
    rpc.init_app(app)
    with pytest.raises(RuntimeError, match="already set up"):
        rpc.init_app(app)


def test_state_of_an_app_without_init_app(make_app, rpc):
    with pytest.raises(RuntimeError, match="init_app"):
        rpc.state(make_app())


def test_two_objects_with_the_same_name_or_prefix_are_refused(make_app):
    app = make_app()
    RPCEnable().init_app(app)
    with pytest.raises(RuntimeError, match="named 'rpcenable'"):
        RPCEnable(url_prefix="/other").init_app(app)
    with pytest.raises(RuntimeError, match="already serves '/rpc'"):
        RPCEnable(name="second").init_app(app)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RPCENABLE_MAX_DEPTH", 0),
        ("RPCENABLE_MAX_REQUEST_SIZE", "10"),
        ("RPCENABLE_MAX_MULTICALL", True),
        ("RPCENABLE_I8", "sometimes"),
        ("RPCENABLE_ENCODING", "no-such-codec"),
        ("RPCENABLE_URL_PREFIX", "rpc"),
    ],
)
def test_invalid_settings_are_a_runtime_error(make_app, rpc, key, value):
    with pytest.raises(RuntimeError, match=key):
        rpc.init_app(make_app(**{key: value}))


def test_constructor_with_app(make_app):
    app = make_app()
    rpc = RPCEnable(app)

    @rpc.register
    def hello() -> str:
        return "hi"

    with running(app) as base, proxy(base + "/rpc/") as server:
        assert server.hello() == "hi"


# -- several objects, several apps ----------------------------------------------------------


def test_two_objects_on_one_app(make_app):
    public = RPCEnable()
    internal = RPCEnable(url_prefix="/internal/rpc", name="internal")

    @public.register
    def hello() -> str:
        return "public"

    @internal.register
    def secret() -> str:
        return "internal"

    @internal.register(name="hello")
    def internal_hello() -> str:
        return "internal hello"

    app = make_app()
    public.init_app(app)
    internal.init_app(app)
    public_records: list[CallRecord] = []
    internal_records: list[CallRecord] = []
    public.state(app).dispatcher.recorders.append(public_records.append)
    internal.state(app).dispatcher.recorders.append(internal_records.append)
    assert public.state(app).primary and not internal.state(app).primary
    with running(app) as base:
        with proxy(base + "/rpc/") as server:
            assert server.hello() == "public"
            assert server.system.listMethods()[0] == "hello"
            with pytest.raises(xmlrpc.client.Fault) as excinfo:
                server.secret()
            assert excinfo.value.faultCode == METHOD_NOT_FOUND
        with proxy(base + "/internal/rpc/") as server:
            assert server.secret() == "internal"
            assert server.hello() == "internal hello"
        assert post(base + "/internal/rpc/", None, method="GET").status == 200
    assert [r.method for r in public_records] == ["hello", "system.listMethods", "secret"]
    assert [r.method for r in internal_records] == ["secret", "hello"]


def test_one_object_on_two_apps(make_app, tmp_path):
    rpc = RPCEnable()

    @rpc.register
    def which() -> str:
        return current_app.config["WHO"]

    first = new_app(tmp_path / "one", WHO="first")
    second = new_app(tmp_path / "two", WHO="second", RPCENABLE_URL_PREFIX="/api")
    rpc.init_app(first)
    rpc.init_app(second)
    assert rpc.state(first) is not rpc.state(second)
    assert rpc.state(first).dispatcher is not rpc.state(second).dispatcher
    with running(first) as one, running(second) as two:
        with proxy(one + "/rpc/") as server:
            assert server.which() == "first"
        with proxy(two + "/api/") as server:
            assert server.which() == "second"
        assert post(two + "/rpc/", call_body("which")).status == 404


# -- what functions see ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def context_url(tmp_path_factory):
    app = new_app(tmp_path_factory.mktemp("ctx"), GREETING="hello")
    rpc = RPCEnable()

    @app.before_request
    def remember() -> None:
        g.seen_by_before_request = True

    @rpc.register
    def context() -> dict[str, Any]:
        return {
            "app": current_app.name,
            "greeting": current_app.config["GREETING"],
            "remote_addr": request.remote_addr,
            "user_agent": request.headers.get("User-Agent", ""),
            "path": request.path,
            "g": bool(g.get("seen_by_before_request")),
        }

    @rpc.register
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    @rpc.register
    async def async_context() -> str:
        await asyncio.sleep(0)
        return f"{current_app.name} {request.path}"

    @rpc.register
    async def async_crash() -> None:
        raise ValueError("async secret")

    rpc.init_app(app)
    with running(app) as base:
        yield base


def test_functions_run_in_the_request_context(context_url):
    with proxy(context_url + "/rpc/") as server:
        seen = server.context()
    assert seen == {
        "app": "testapp",
        "greeting": "hello",
        "remote_addr": "127.0.0.1",
        "user_agent": seen["user_agent"],
        "path": "/rpc/",
        "g": True,
    }
    assert seen["user_agent"].startswith("Python-xmlrpc/")


def test_async_functions(context_url):
    with proxy(context_url + "/rpc/") as server:
        assert server.slow_double(21) == 42
        assert server.async_context() == "testapp /rpc/"
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            server.async_crash()
        assert "async secret" not in excinfo.value.faultString
        assert server.system.multicall(
            [{"methodName": "slow_double", "params": [1]}, {"methodName": "slow_double"}]
        )[0] == [2]


# -- CSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["csrf-first", "csrf-after"])
def test_endpoint_works_with_csrf_protect(make_app, rpc, order):
    @rpc.register
    def ping() -> str:
        return "pong"

    app = make_app(TESTING=False)

    @app.post("/form")
    def form() -> str:
        return "accepted"

    csrf = CSRFProtect()
    if order == "csrf-first":
        csrf.init_app(app)
        rpc.init_app(app)
    else:
        rpc.init_app(app)
        csrf.init_app(app)
    with running(app) as base:
        # CSRF protection is on for the rest of the app ...
        assert post(base + "/form", b"x=1", {"Content-Type": "application/x-www-form-urlencoded"}
                    ).status == 400
        # ... but not for the RPC endpoint
        with proxy(base + "/rpc/") as server:
            assert server.ping() == "pong"
        assert post(base + "/rpc/", call_body("ping")).loads() == "pong"
