"""Redaction, truncation and the dashboard's percentile: pure functions."""

from __future__ import annotations

import datetime
import json
import xmlrpc.client

import pytest

from flask_rpcenable.admin.dashboard import percentile
from flask_rpcenable.calllog.recorder import DEFAULTS, summarize_multicall
from flask_rpcenable.redact import (
    cut_text,
    dump_json,
    is_secret_key,
    sanitize,
    strip_url_credentials,
)

KEYS = tuple(DEFAULTS["RPCENABLE_LOG_REDACT_KEYS"])


def test_secret_keys_are_recognised_in_any_spelling() -> None:
    for key in ("api_key", "API-Key", "apiKey", "password", "X-Auth-Token", "client_secret",
                "signature", "Authorization"):
        assert is_secret_key(key, KEYS), key
    for key in ("name", "monkey", "count", "username", "var"):
        assert not is_secret_key(key, KEYS), key


def test_sanitize_redacts_nested_structs_and_converts_types() -> None:
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    value = [
        {"user": "alice", "api_key": "k1", "inner": [{"Password": "p", "n": 1}]},
        b"\x00\x01binary",
        xmlrpc.client.Binary(b"x" * 100),
        when,
        xmlrpc.client.DateTime(when),
        None,
        1.5,
    ]
    out = sanitize(value, 1000, KEYS)
    assert out[0] == {"user": "alice", "api_key": "***", "inner": [{"Password": "***", "n": 1}]}
    assert out[1].startswith("<binary 8 bytes, base64: AAFiaW5hcnk=")
    assert out[2].startswith("<binary 100 bytes, base64: ") and out[2].endswith("...>")
    assert out[3] == out[4] == "2024-05-06T07:08:09"
    assert out[5:] == [None, 1.5]
    json.dumps(out)  # JSON-ready


def test_dump_json_cuts_long_values() -> None:
    text = dump_json(["a" * 5000, list(range(3000))], 200, KEYS)
    assert len(text) <= 200
    assert "[cut: " in text


def test_cut_text_keeps_the_end_of_tracebacks() -> None:
    tb = "Traceback (most recent call last):\n" + "  frame\n" * 500 + "ValueError: the end"
    cut = cut_text(tb, 200, keep_tail=True)
    assert cut is not None and len(cut) <= 210
    assert cut.endswith("ValueError: the end")
    assert cut_text("short", 200) == "short"
    assert cut_text(None, 200) is None


def test_strip_url_credentials() -> None:
    url = "https://alice:s3cret@example.org:8443/rpc/?token=abc&x=1&api_key=zz#frag"
    stripped = strip_url_credentials(url)
    assert "alice" not in stripped and "s3cret" not in stripped
    assert "abc" not in stripped and "zz" not in stripped
    assert stripped.startswith("https://example.org:8443/rpc/?")
    assert "x=1" in stripped and "token=***" in stripped


def test_multicall_envelope_keeps_method_names_only() -> None:
    calls = [{"methodName": "a", "params": ["nonce", 1, "u", "sig"]}, {"methodName": "b"}, 5]
    assert summarize_multicall([calls]) == [{"methods": ["a", "b", "?"]}]
    assert summarize_multicall(["x", "y"]) == ["***", "***"]


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
