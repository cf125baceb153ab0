"""Attacks on HMAC auth: odd values, hostile v2 headers, replay, cache keys, secrets in logs."""

from __future__ import annotations

import logging
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
from live import env_or_skip
from security_helpers import APP_SECRET, SecApp, make_sec_app, row_text

from flask_rpcenable.auth.signing import compute_signature, new_nonce, sign_request_v2

ODD_NAMES = ["a b", "x" * 255, "new\nline", "col:on::", "\u00fcn\u00ef \u4e2d", "tab\tx", "\x7f"]


@pytest.fixture
def sec(tmp_path: Path) -> SecApp:
    return make_sec_app(tmp_path)


def _code(result: Any) -> int | None:
    return result.faultCode if isinstance(result, xmlrpc.client.Fault) else None


@pytest.mark.parametrize(
    "timestamp",
    [-5, 1.5, True, False, "\uff11\uff12\uff13", "9" * 4400, "", None, [], {}, "0x10", " 1",
     "1e9", 2**31 - 1, "9" * 16],
)
def test_odd_timestamps_are_403(sec: SecApp, timestamp: Any) -> None:
    sec.add_user("alice")
    assert _code(sec.call("whoami", new_nonce(), timestamp, "alice", "0" * 64)) == 403


@pytest.mark.parametrize(
    ("username", "signature"),
    [
        ("u" * 10_000_000, "0" * 64),
        ("alice", "0" * 9_000_000),
        ("alice", "\u00e9" * 64),
        ("alice", "\U0001f600" * 64),
        ("", "0" * 64),
        (["alice"], "0" * 64),
        ("alice", None),
        ("alice", 12345),
    ],
    ids=["10MB-username", "9MB-signature", "latin-signature", "emoji-signature",
         "empty-username", "list-username", "nil-signature", "int-signature"],
)
def test_huge_or_odd_credentials_get_406(sec: SecApp, username: Any, signature: Any) -> None:
    sec.add_user("alice")
    result = sec.call("whoami", new_nonce(), int(time.time()), username, signature)
    assert _code(result) == 406
    assert result.faultString == "Authentication failed"


HOSTILE_V2 = [
    "RPCEnable-HMAC-SHA256",
    "RPCEnable-HMAC-SHA256 username=a, username=b, timestamp=1, nonce=x, signature=y",
    "RPCEnable-HMAC-SHA256 " + "a" * 100_000,
    "RPCEnable-HMAC-SHA256 username=%ff, timestamp=1, nonce=" + "n" * 20 + ", signature=y",
    "RPCEnable-HMAC-SHA256 username=\u00fc, timestamp=1, nonce=" + "n" * 20 + ", signature=y",
    'RPCEnable-HMAC-SHA256 username="", timestamp="", nonce="", signature=""',
    "RPCEnable-HMAC-SHA256 username=a, timestamp=-1, nonce=" + "n" * 20 + ", signature=y",
    "RPCEnable-HMAC-SHA256 username=a, timestamp=" + "9" * 40 + ", nonce=" + "n" * 20
    + ", signature=y",
    "RPCEnable-HMAC-SHA256 username=a%00b, timestamp=1, nonce=" + "n" * 20 + ", signature=y",
    "RPCEnable-HMAC-SHA256 username=a, timestamp=1, nonce=" + "n" * 20 + ", signature=y, x=1",
    "rpcenable-hmac-sha256 ,,,,,,",
    "RPCEnable-HMAC-SHA256 =, ==, ===",
]


@pytest.mark.parametrize("header", HOSTILE_V2)
def test_hostile_v2_headers_get_an_auth_fault(sec: SecApp, header: str) -> None:
    body = xmlrpc.client.dumps((), "whoami").encode()
    response = sec.post(body, headers={"Authorization": header})
    assert response.status_code == 200
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(response.data)
    assert info.value.faultCode in (401, 403, 406)
    assert len(info.value.faultString) < 200  # the header is not echoed back


def test_v2_header_with_an_unknown_user_is_the_same_fault_as_a_bad_signature(
    sec: SecApp,
) -> None:
    key = sec.add_user("alice")
    body = xmlrpc.client.dumps((), "whoami").encode()
    faults = []
    for username, api_key in (("alice", "wrong key"), ("nobody", key), ("alice", key + "x")):
        header = sign_request_v2(username, api_key, "POST", "/rpc/", body)
        faults.append(
            sec.call("whoami", headers={"Authorization": header})
        )
    assert {(f.faultCode, f.faultString) for f in faults} == {(406, "Authentication failed")}


def _replay_checks(sec: SecApp) -> None:
    for name in ODD_NAMES:
        key = sec.add_user(name)
        args = sec.v1_args(name)
        assert sec.call("whoami", *args) == name
        assert _code(sec.call("whoami", *args)) == 402
        body = xmlrpc.client.dumps((), "whoami").encode()
        nonce = new_nonce()
        header = {"Authorization": sign_request_v2(name, key, "POST", "/rpc/", body, nonce=nonce)}
        assert sec.call("whoami", headers=header) == name
        assert _code(sec.call("whoami", headers=header)) == 402
        # the nonce of a v2 request cannot be reused with v1, nor the other way round
        timestamp = int(time.time())
        cross = [nonce, timestamp, name, compute_signature(nonce, timestamp, name, key)]
        assert _code(sec.call("whoami", *cross)) == 402
        v1_nonce = args[0]
        header = {"Authorization": sign_request_v2(name, key, "POST", "/rpc/", body,
                                                   nonce=v1_nonce)}
        assert _code(sec.call("whoami", headers=header)) == 402


def test_replay_protection_with_odd_usernames_in_process_cache(sec: SecApp) -> None:
    _replay_checks(sec)


def test_replay_protection_with_odd_usernames_in_memcached(tmp_path: Path) -> None:
    server = env_or_skip("RPCENABLE_TEST_MEMCACHED")
    sec = make_sec_app(
        tmp_path,
        RPCENABLE_CACHE_TYPE="MemcachedCache",
        RPCENABLE_CACHE_MEMCACHED_SERVERS=[server],
        RPCENABLE_CACHE_KEY_PREFIX=f"sec{time.time_ns()}_",
    )
    backend = sec.rpc.state(sec.app).dispatcher.authenticator.nonces.backend
    assert type(backend).__name__ == "MemcachedCache"
    _replay_checks(sec)


def test_replay_protection_with_odd_usernames_in_redis(tmp_path: Path) -> None:
    url = env_or_skip("RPCENABLE_TEST_REDIS_URL")
    sec = make_sec_app(
        tmp_path,
        RPCENABLE_CACHE_TYPE="RedisCache",
        RPCENABLE_CACHE_REDIS_URL=url,
        RPCENABLE_CACHE_KEY_PREFIX=f"sec{time.time_ns()}_",
    )
    _replay_checks(sec)


def test_no_secret_in_log_rows_faults_or_app_log(
    sec: SecApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = sec.add_user("alice")
    secrets = [key, APP_SECRET]
    good = sec.v1_args("alice")
    assert sec.call("whoami", *good) == "alice"
    replay = sec.call("whoami", *good)
    wrong = sec.v1_args("alice", key="not-the-key")
    bad = sec.call("whoami", *wrong)
    body = xmlrpc.client.dumps((), "whoami").encode()
    header = sign_request_v2("alice", key, "POST", "/rpc/", body)
    assert sec.call("whoami", headers={"Authorization": header}) == "alice"
    bad_v2 = sec.call("whoami", headers={"Authorization": header})
    multicall = sec.call("system.multicall", [
        {"methodName": "whoami", "params": sec.v1_args("alice")},
        {"methodName": "take", "params": [{"api_key": key, "Password": "hunter2-pw"}]},
    ])
    assert multicall[0] == ["alice"]
    sec.call("boom", "no secret here")
    secrets += [good[0], good[3], wrong[3], header.rpartition("signature=")[2],
                header.split("nonce=")[1].split(",")[0], "hunter2-pw"]
    texts = [row_text(row) for row in sec.rows()]
    assert len(texts) >= 7
    for fault in (replay, bad, bad_v2):
        texts.append(fault.faultString)
    texts.append(caplog.text)
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret[:8], text[:200])
    with sec.app.app_context():
        sec.job("x", api_key=key)
        sec.job("y", key)
    jobs = [row_text(row) for row in sec.rows("BackgroundJob")]
    assert len(jobs) == 2
    assert not any(key in text for text in jobs + [caplog.text])
