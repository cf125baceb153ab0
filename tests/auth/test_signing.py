"""The signing helpers, checked against HMACs computed outside our code.

Scheme v1 is checked with ``openssl dgst -sha256 -hmac``; scheme v2 with
Node's ``crypto`` module, from the wire description alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time

import pytest

from flask_rpcenable.auth.signing import (
    SCHEME_V2,
    compute_signature,
    generate_auth_args,
    new_nonce,
    parse_authorization_v2,
    sign_request_v2,
    string_to_sign_v2,
)


def openssl_hmac(key: str, message: str) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    out = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", key],
        input=message.encode("utf-8"),
        capture_output=True,
        check=True,
    ).stdout.decode()
    # "SHA2-256(stdin)= <hex>" or "(stdin)= <hex>" depending on the version
    return out.strip().rsplit(" ", 1)[-1]


# A vector fixed once (computed with openssl) so that a broken openssl cannot
# make the test pass vacuously.
FIXED = {
    "nonce": "abcdefghijklmnop",
    "timestamp": 1700000000,
    "username": "alice",
    "api_key": "secret-key",
}


@pytest.mark.parametrize(
    ("nonce", "timestamp", "username", "api_key"),
    [
        ("abcdefghijklmnop", 1700000000, "alice", "secret-key"),
        ("Z-_9" * 8, "1700000123", "bob the builder", "k" * 64),
        ("n" * 128, 0, "jürgen-ß", "clé-ünïcode"),
    ],
)
def test_v1_signature_matches_openssl(nonce: str, timestamp: object, username: str,
                                      api_key: str) -> None:
    expected = openssl_hmac(api_key, f"{nonce};{timestamp};{username}")
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert compute_signature(nonce, timestamp, username, api_key) == expected  # type: ignore[arg-type]


def test_v1_fixed_vector() -> None:
    # printf '%s' 'abcdefghijklmnop;1700000000;alice' | openssl dgst -sha256 -hmac secret-key
    signature = compute_signature(**FIXED)  # type: ignore[arg-type]
    assert signature == "11ef2f5b2549ceed9d6c5601122f1356eb7b228afb1693942dac53554c48242e"
    assert signature == openssl_hmac("secret-key", "abcdefghijklmnop;1700000000;alice")


def test_int_and_string_timestamps_sign_alike() -> None:
    nonce = "a" * 16
    assert compute_signature(nonce, 123, "u", "k") == compute_signature(nonce, "123", "u", "k")


def test_new_nonce_shape_and_uniqueness() -> None:
    nonces = {new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    for nonce in nonces:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", nonce)


def test_generate_auth_args() -> None:
    before = int(time.time())
    args = generate_auth_args("alice", "the-key")
    after = int(time.time())
    assert isinstance(args, tuple) and len(args) == 4
    nonce, timestamp, username, signature = args
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,128}", nonce)
    assert isinstance(timestamp, int) and before <= timestamp <= after
    assert username == "alice"
    assert signature == openssl_hmac("the-key", f"{nonce};{timestamp};alice")
    # the django-rpcenable idiom: prepend to a tuple of parameters
    assert (args + ("Hi",))[4] == "Hi"
    assert generate_auth_args("alice", "the-key")[0] != nonce


# -- scheme v2 ------------------------------------------------------------------

NODE_V2 = r"""
const crypto = require("crypto");
const a = JSON.parse(process.argv[1]);
const body = Buffer.from(a.body_b64, "base64");
const bodyHash = crypto.createHash("sha256").update(body).digest("hex");
const sts = ["RPCEnable-HMAC-SHA256", a.method.toUpperCase(), a.path, bodyHash,
             a.nonce, String(a.timestamp), a.username].join("\n");
const sig = crypto.createHmac("sha256", Buffer.from(a.key, "utf8"))
                  .update(Buffer.from(sts, "utf8")).digest("hex");
process.stdout.write("RPCEnable-HMAC-SHA256 username=" + encodeURIComponent(a.username) +
    ", timestamp=" + a.timestamp + ", nonce=" + a.nonce + ", signature=" + sig);
"""


def node_sign_v2(**fields: object) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    return subprocess.run(
        [node, "-e", NODE_V2, json.dumps(fields)], capture_output=True, check=True, text=True
    ).stdout


@pytest.mark.parametrize("username", ["alice", "zoë and friends/ops"])
def test_v2_header_matches_node(username: str) -> None:
    import base64

    body = b"<?xml version='1.0'?><methodCall><methodName>echo</methodName></methodCall>"
    nonce, timestamp = "N" * 20, 1700000000
    header = sign_request_v2(
        username, "k3y-ü", "post", "/rpc/v2/", body, nonce=nonce, timestamp=timestamp
    )
    expected = node_sign_v2(
        username=username, key="k3y-ü", method="post", path="/rpc/v2/",
        body_b64=base64.b64encode(body).decode(), nonce=nonce, timestamp=timestamp,
    )
    # encodeURIComponent leaves a few characters (!'()*) unescaped; our
    # usernames here use none of them, so the headers are byte-identical.
    assert header == expected
    parsed = parse_authorization_v2(expected)
    assert parsed is not None and parsed["username"] == username


def test_string_to_sign_v2_layout() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    text = string_to_sign_v2("post", "", digest, "n" * 16, 5, "u")
    assert text.split("\n") == [SCHEME_V2, "POST", "/", digest, "n" * 16, "5", "u"]
    with_query = string_to_sign_v2("POST", "/rpc/?a=1", digest, "n" * 16, 5, "u")
    assert with_query.split("\n")[2] == "/rpc/"


def test_parse_authorization_v2_roundtrip_and_other_schemes() -> None:
    header = sign_request_v2("a b,c=d", "k", "POST", "/rpc/", b"", keyid="2024")
    fields = parse_authorization_v2(header)
    assert fields is not None
    assert fields["username"] == "a b,c=d"
    assert fields["keyid"] == "2024"
    assert re.fullmatch(r"[0-9a-f]{64}", fields["signature"])
    assert parse_authorization_v2("Basic dXNlcjpwYXNz") is None
    assert parse_authorization_v2("Bearer abc") is None
    # scheme name is case-insensitive, values may be quoted
    quoted = 'rpcenable-hmac-sha256 username="u", timestamp="1", nonce="n", signature="s"'
    assert parse_authorization_v2(quoted) == {
        "username": "u", "timestamp": "1", "nonce": "n", "signature": "s"
    }


@pytest.mark.parametrize(
    "value",
    [
        "RPCEnable-HMAC-SHA256",
        "RPCEnable-HMAC-SHA256 username=u, timestamp=1, nonce=n",
        "RPCEnable-HMAC-SHA256 username=u, timestamp=1, nonce=n, signature=s, extra=1",
        "RPCEnable-HMAC-SHA256 username=u, username=v, timestamp=1, nonce=n, signature=s",
        "RPCEnable-HMAC-SHA256 username=%FF, timestamp=1, nonce=n, signature=s",
        "RPCEnable-HMAC-SHA256 username, timestamp=1, nonce=n, signature=s",
        "RPCEnable-HMAC-SHA256 username=u, timestamp=1, nonce=n, signature=" + "a" * 5000,
    ],
)
def test_parse_authorization_v2_malformed(value: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization_v2(value)
