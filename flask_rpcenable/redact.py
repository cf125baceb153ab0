"""Redaction and truncation: what of a call's data may be stored or shown.

The one place for it: the call log, job records and mail, the client's log
and error messages and the dispatcher all use these. Struct members whose
key names a secret (``RPCENABLE_LOG_REDACT_KEYS``) and scheme-v1
authentication arguments become ``***``; long texts are cut, saying so.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xmlrpc.client import Binary, DateTime

from .params import V1_AUTH_PARAMS

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "JSON_ENCODER",
    "NONCE_RE",
    "REDACTED",
    "SIGNATURE_RE",
    "cut_text",
    "dump_json",
    "is_secret_key",
    "looks_like_auth_args",
    "norm_key",
    "redact_auth_params",
    "redact_keys",
    "redact_v1_like",
    "sanitize",
    "strip_url_credentials",
]

#: What a redacted value is replaced with.
REDACTED = "***"
#: A scheme-v1 nonce: 16 to 128 of ``[A-Za-z0-9_-]``.
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
#: A scheme-v1 signature: lowercase (or uppercase) hex HMAC-SHA256.
SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}")
#: The JSON encoder of every logged value (non-ASCII text kept as it is).
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False)
_MAX_DEPTH = 32

#: Struct keys (and parts of keys) whose values the logs and job records redact.
DEFAULT_REDACT_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "signature",
    "apikey",
    "authorization",
    "privatekey",
    "credential",
)

def norm_key(key: Any) -> str:
    """``key`` lowercased with everything but letters and digits left out."""
    return "".join(ch for ch in str(key).lower() if ch.isalnum())


def redact_keys(value: str | Iterable[Any]) -> tuple[str, ...]:
    """The redact-keys setting (one key or several) as normalized, non-empty keys."""
    keys = [value] if isinstance(value, str) else value
    return tuple(norm_key(k) for k in keys if norm_key(k))


def is_secret_key(key: Any, redact_keys: Iterable[str]) -> bool:
    """Whether a struct key names a secret (``api_key``, ``X-Auth-Token`` ...)."""
    norm = norm_key(key)
    return any(part in norm for part in redact_keys)


#: Struct keys up to this length have their :func:`is_secret_key` answer
#: remembered (the same few come back on every call); longer ones are rare
#: and would make the memory the cache holds depend on what clients send.
_REMEMBERED_KEY_MAX = 64
_is_secret_short_key = functools.lru_cache(maxsize=1024)(is_secret_key)


def _is_secret_name(name: str, redact_keys: tuple[str, ...]) -> bool:
    if len(name) <= _REMEMBERED_KEY_MAX and isinstance(redact_keys, tuple):
        return _is_secret_short_key(name, redact_keys)
    return is_secret_key(name, redact_keys)


class _Budget:
    """How many more characters of JSON text :func:`dump_json` needs, at least.

    Every part written takes off no more than its JSON text's length (a
    lower bound), so once :attr:`left` reaches zero the text written so far
    already fills the limit, and nothing after it could be stored.
    """

    __slots__ = ("left", "stopped")

    def __init__(self, chars: int) -> None:
        self.left = chars
        self.stopped = False


def sanitize(
    value: Any,
    max_chars: int,
    redact_keys: tuple[str, ...],
    depth: int = 0,
    budget: _Budget | None = None,
) -> Any:
    """A JSON-ready copy of ``value``: secrets redacted, long parts shortened.

    Bytes become a short base64 summary, datetimes ISO 8601 text; strings and
    arrays longer than ``max_chars`` are cut (the whole text is cut again
    after serialization). With a ``budget`` (:func:`dump_json`), arrays and
    structs stop once enough text for the limit is written.
    """
    if depth > _MAX_DEPTH:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, int, float)):
        if budget is not None:
            budget.left -= 1
        return value
    if isinstance(value, str):
        if len(value) > max_chars:
            value = f"{value[:max_chars]}... [{len(value)} characters]"
        if budget is not None:
            budget.left -= len(value) + 2
        return value
    if isinstance(value, Binary):
        value = value.data
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        head = base64.b64encode(data[:48]).decode("ascii")
        return _counted(
            f"<binary {len(data)} bytes, base64: {head}{'...' if len(data) > 48 else ''}>", budget
        )
    if isinstance(value, DateTime):
        text = value.value
        try:
            return _counted(
                datetime.datetime.strptime(text, "%Y%m%dT%H:%M:%S").isoformat(), budget
            )
        except ValueError:
            return _counted(text, budget)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return _counted(value.isoformat(), budget)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= max_chars or (budget is not None and budget.left <= 0):
                out["..."] = f"{len(value) - i} more"
                if budget is not None and i < max_chars:
                    budget.stopped = True
                break
            name = str(key)
            if budget is not None:
                budget.left -= len(name) + 6  # "name": , and the separator
            out[name] = (
                _counted(REDACTED, budget)
                if _is_secret_name(name, redact_keys)
                else sanitize(item, max_chars, redact_keys, depth + 1, budget)
            )
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for i, item in enumerate(value):
            if i >= max_chars or (budget is not None and budget.left <= 0):
                items.append(f"... {len(value) - i} more")
                if budget is not None and i < max_chars:
                    budget.stopped = True
                break
            if budget is not None:
                budget.left -= 2  # the separator
            items.append(sanitize(item, max_chars, redact_keys, depth + 1, budget))
        return items
    return _counted(repr(value)[:max_chars], budget)


def _counted(text: str, budget: _Budget | None) -> str:
    if budget is not None:
        budget.left -= len(text) + 2
    return text


def dump_json(value: Any, max_chars: int, redact_keys: tuple[str, ...]) -> str:
    """``value`` as redacted JSON text of at most about ``max_chars`` characters.

    Only as much of ``value`` is read as the stored text can show: a big
    array or struct is not walked past the first ``max_chars`` characters
    of its JSON. The text is then cut as :func:`cut_text` does; when the
    walk stopped early, the note gives the length of the text written
    ("over N characters") instead of the whole value's.
    """
    budget = _Budget(max_chars)
    text = JSON_ENCODER.encode(sanitize(value, max_chars, redact_keys, budget=budget))
    if budget.stopped:
        suffix = f"... [cut: over {len(text)} characters in all]"
        return text[: max(max_chars - len(suffix), 0)] + suffix
    return cut_text(text, max_chars) or ""


def cut_text(text: str | None, max_chars: int, *, keep_tail: bool = False) -> str | None:
    """``text`` cut to ``max_chars``, saying so; tracebacks keep their end."""
    if text is None:
        return None
    if len(text) <= max_chars:
        return text
    if keep_tail:
        prefix = f"[cut: {len(text)} characters in all]\n..."
        return prefix + text[len(text) - max(max_chars - len(prefix), 0) :]
    suffix = f"... [cut: {len(text)} characters in all]"
    return text[: max(max_chars - len(suffix), 0)] + suffix


def looks_like_auth_args(params: Sequence[Any]) -> bool:
    """Whether ``params`` starts with django-rpcenable's v1 auth arguments.

    That is: a nonce-like string (16 or more of ``[A-Za-z0-9_-]``), a
    timestamp (an integer or a string of digits), a username string and a
    64-digit hex signature.
    """
    if len(params) < 4:
        return False
    nonce, timestamp, username, signature = params[:4]
    return (
        isinstance(nonce, str)
        and bool(NONCE_RE.fullmatch(nonce))
        and (
            (isinstance(timestamp, int) and not isinstance(timestamp, bool))
            or (isinstance(timestamp, str) and timestamp.isdigit())
        )
        and isinstance(username, str)
        and isinstance(signature, str)
        and bool(SIGNATURE_RE.fullmatch(signature))
    )


def redact_auth_params(params: Sequence[Any], *, known: bool = False) -> tuple[Any, ...]:
    """``params`` with leading v1 auth arguments replaced by ``"***"``.

    :param known: the first four parameters are auth arguments (the point
        added them); otherwise they are redacted only when they look like
        auth arguments (see :func:`looks_like_auth_args`), which catches
        django-rpcenable style ``param_hook`` functions.
    """
    params = tuple(params)
    if known or looks_like_auth_args(params):
        return (REDACTED,) * min(4, len(params)) + params[4:]
    return params


def redact_v1_like(params: Any) -> Any:
    """``params`` with anything that looks like v1 authentication arguments redacted.

    Applied to every call, whatever its method: a mistyped method name or a
    guarded method called in the wrong namespace must not leave a replayable
    nonce, timestamp, username and signature in the call log. By position,
    the first four parameters are replaced when :func:`looks_like_auth_args`
    says so; by name, the four members ``nonce``, ``timestamp``, ``username``
    and ``signature`` when all four are there. Anything else is returned as
    is (the same object, so that the common case costs no copy).
    """
    if isinstance(params, list):
        if looks_like_auth_args(params):
            return [REDACTED] * 4 + params[4:]
        return params
    if isinstance(params, dict) and all(name in params for name in V1_AUTH_PARAMS):
        return {k: REDACTED if k in V1_AUTH_PARAMS else v for k, v in params.items()}
    return params


def strip_url_credentials(url: str, redact_keys: Iterable[str] = DEFAULT_REDACT_KEYS) -> str:
    """``url`` without ``user:password@`` and with secret query values redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        keys = tuple(norm_key(k) for k in redact_keys)
        query = urlencode(
            [(k, REDACTED if is_secret_key(k, keys) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
