"""Signing helpers for the two authentication schemes (no Flask here).

Scheme v1 (django-rpcenable compatible) puts four parameters in front of
the call: ``nonce, timestamp, username, signature``, where ``signature`` is
the lowercase hex HMAC-SHA256 keyed with the API key over
``f"{nonce};{timestamp};{username}"``.

Scheme v2 signs the HTTP method, the path and the SHA-256 of the body as
well, and travels in an ``Authorization`` header::

    Authorization: RPCEnable-HMAC-SHA256 username=<quoted>, timestamp=<int>,
        nonce=<nonce>, signature=<64 hex>

The string to sign is the lines ``RPCEnable-HMAC-SHA256``, the upper-case
HTTP method, the path, the hex SHA-256 of the body, the nonce, the
timestamp and the username, joined by ``"\\n"``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import quote, unquote

from ..redact import NONCE_RE

__all__ = [
    "NONCE_RE",
    "KeyedMacs",
    "SCHEME_V2",
    "compute_signature",
    "generate_auth_args",
    "message_v1",
    "new_nonce",
    "parse_authorization_v2",
    "sign_request_v2",
    "string_to_sign_v2",
]

#: The ``Authorization`` scheme name of scheme v2.
SCHEME_V2 = "RPCEnable-HMAC-SHA256"

#: What a valid nonce looks like (both schemes).

_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_MAX_HEADER = 4096
_V2_FIELDS = ("username", "timestamp", "nonce", "signature")
_V2_OPTIONAL = ("keyid",)


def new_nonce() -> str:
    """Return a fresh random nonce: 32 characters of ``[A-Za-z0-9_-]``."""
    return secrets.token_urlsafe(24)


def compute_signature(nonce: str, timestamp: int | str, username: str, api_key: str) -> str:
    """Return the scheme-v1 signature (lowercase hex HMAC-SHA256).

    :param nonce: the random nonce of the call.
    :param timestamp: Unix seconds, an integer or a string of digits.
    :param username: the API user's name.
    :param api_key: the API user's key (the shared secret).
    """
    message = message_v1(nonce, timestamp, username)
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def message_v1(nonce: str, timestamp: int | str, username: str) -> bytes:
    """The bytes a scheme-v1 signature is the HMAC of: ``nonce;timestamp;username``."""
    return f"{nonce};{timestamp};{username}".encode()


class KeyedMacs:
    """Hex HMAC-SHA256 signatures, with the keyed state kept per key (at most ``size`` keys).

    Keying an HMAC hashes the key; copying a keyed one does not, so a key
    seen before costs one hash of the message. The keyed states live in a
    :func:`functools.lru_cache` of ``size`` (least recently used go first).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._keyed = functools.lru_cache(maxsize=size)(_keyed_mac)

    def hexdigest(self, key: str, message: bytes) -> str:
        """The lowercase hex HMAC-SHA256 of ``message`` under ``key``."""
        mac = self._keyed(key).copy()
        mac.update(message)
        return mac.hexdigest()

    def __len__(self) -> int:
        return self._keyed.cache_info().currsize


def _keyed_mac(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def generate_auth_args(username: str, api_key: str) -> tuple[str, int, str, str]:
    """Return ``(nonce, timestamp, username, signature)`` for one v1 call.

    A tuple, so that ``generate_auth_args(user, key) + params`` builds the
    parameters of an authenticated call as in django-rpcenable.
    """
    nonce = new_nonce()
    timestamp = int(time.time())
    return (nonce, timestamp, username, compute_signature(nonce, timestamp, username, api_key))


def _normalise_path(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0]
    return path or "/"


def string_to_sign_v2(
    method: str,
    path: str,
    body_sha256_hex: str,
    nonce: str,
    timestamp: int | str,
    username: str,
) -> str:
    """Return the scheme-v2 string to sign.

    :param method: the HTTP method (upper-cased here).
    :param path: the URL path, without query; an empty path counts as ``/``.
    :param body_sha256_hex: the lowercase hex SHA-256 of the request body.
    """
    return "\n".join(
        [
            SCHEME_V2,
            method.upper(),
            _normalise_path(path),
            body_sha256_hex.lower(),
            nonce,
            str(timestamp),
            username,
        ]
    )


def signature_v2(api_key: str, string_to_sign: str) -> str:
    """Return the lowercase hex HMAC-SHA256 of a v2 string to sign."""
    return hmac.new(api_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign_request_v2(
    username: str,
    api_key: str,
    method: str,
    path: str,
    body: bytes,
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
    keyid: str | None = None,
) -> str:
    """Return the value of the ``Authorization`` header for one request.

    :param body: the exact bytes of the request body (before compression).
    :param nonce: a fixed nonce (tests); a fresh one by default.
    :param timestamp: a fixed timestamp (tests); now by default.
    :param keyid: an optional key id, sent but not signed.
    """
    nonce = new_nonce() if nonce is None else nonce
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    digest = hashlib.sha256(body).hexdigest()
    signature = signature_v2(
        api_key, string_to_sign_v2(method, path, digest, nonce, timestamp, username)
    )
    parts = [
        f"username={quote(username, safe='')}",
        f"timestamp={timestamp}",
        f"nonce={nonce}",
        f"signature={signature}",
    ]
    if keyid is not None:
        parts.append(f"keyid={quote(keyid, safe='')}")
    return f"{SCHEME_V2} " + ", ".join(parts)


def parse_authorization_v2(header_value: str) -> dict[str, str] | None:
    """Parse a scheme-v2 ``Authorization`` header value.

    Returns ``None`` when the header uses another scheme, a dict with the
    keys ``username`` (decoded), ``timestamp``, ``nonce``, ``signature``
    (and ``keyid`` when present) otherwise. Raises :class:`ValueError` when
    the header uses our scheme but is malformed. Only the syntax is checked
    here; the values are checked by the verifier.
    """
    value = header_value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != SCHEME_V2.lower():
        return None
    if len(value) > _MAX_HEADER:
        raise ValueError("Authorization header too long")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in (*_V2_FIELDS, *_V2_OPTIONAL):
            raise ValueError(f"unexpected field in Authorization header: {name[:32]!r}")
        if name in fields:
            raise ValueError(f"repeated field in Authorization header: {name!r}")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        if name in ("username", "keyid"):
            try:
                raw = unquote(raw, errors="strict")
            except UnicodeDecodeError:
                raise ValueError(f"{name} is not percent-encoded UTF-8") from None
        fields[name] = raw
    missing = [name for name in _V2_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"missing fields in Authorization header: {', '.join(missing)}")
    return fields
