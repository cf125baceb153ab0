"""Reading a message body with a cap on its size, gzip and deflate included.

The endpoint reads requests and the client reads responses the same way: the
bytes read and the bytes they inflate to are both capped while reading, so a
compression bomb is refused without a memory spike. So is the expansion
ratio: past :data:`RATIO_FLOOR` inflated bytes, a body may never have
inflated to more than ``max_ratio`` times the compressed bytes read so far
(10 MB of XML in 10 KB of gzip is refused after its first megabyte). Each caller turns the
errors below into its own (HTTP 413/415/400 for the endpoint, client
exceptions for the client).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_RATIO",
    "RATIO_FLOOR",
    "BadCompression",
    "BodyError",
    "TooExpanded",
    "TooLarge",
    "UnsupportedEncoding",
    "read_capped",
]

CHUNK = 64 * 1024
#: The default cap on inflated bytes per compressed byte. gzip reaches about
#: 1,000 on repetitive input; real XML-RPC bodies stay far below 500 (a
#: 2,000-struct call: 45; 100,000 zeros: 400).
MAX_RATIO = 500
#: Bodies that inflate to at most this many bytes are never refused for their ratio.
RATIO_FLOOR = 1024 * 1024


class BodyError(Exception):
    """A body that cannot be read as sent."""


class TooLarge(BodyError):
    """More than the limit, read or inflated."""


class TooExpanded(TooLarge):
    """A compressed body that inflates to more than the ratio allows."""


class UnsupportedEncoding(BodyError):
    """A ``Content-Encoding`` other than identity, gzip and deflate."""


class BadCompression(BodyError):
    """Invalid compressed data, a stream cut short, or data after its end."""


def _inflater(encoding: str) -> Any:
    """A decompressor for ``encoding`` (``None`` for identity)."""
    if encoding == "identity":  # the usual case, as the view passes it
        return None
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise UnsupportedEncoding(encoding)


def read_capped(
    read: Callable[[int], bytes],
    encoding: str,
    limit: int,
    length: int | None = None,
    *,
    max_ratio: int = MAX_RATIO,
) -> bytes:
    """Read a body with ``read(n)`` until it returns ``b""``; inflate it if compressed.

    :param encoding: the ``Content-Encoding`` header's value.
    :param limit: the most bytes both read and (once inflated) returned.
    :param length: the ``Content-Length``, if known: no read asks for more
        than what is left of it, so a small body never costs a chunk-sized
        buffer.
    :param max_ratio: the most bytes a compressed body may inflate to per
        compressed byte read, once past :data:`RATIO_FLOOR`.
    :raises TooLarge: past ``limit``.
    :raises TooExpanded: (a :class:`TooLarge`) past the ratio.
    :raises UnsupportedEncoding: for an unknown ``encoding``.
    :raises BadCompression: for invalid or truncated compressed data, or bytes
        after the end of the compressed stream (what a proxy sees and what is
        parsed must not differ).
    """
    inflater = _inflater(encoding)
    parts: list[bytes] = []
    size = raw = 0
    while chunk := read(CHUNK if length is None else max(0, min(CHUNK, length - raw))):
        raw += len(chunk)
        if raw > limit:
            raise TooLarge
        if inflater is None:
            parts.append(chunk)
            if raw == length:  # all of it: no read that can only return b""
                break
            continue
        if inflater.eof:
            raise BadCompression("data after the end of the compressed stream")
        # Never inflate past what the ratio allows for the bytes read so far.
        allowed = min(limit, max(RATIO_FLOOR, max_ratio * raw))
        try:
            while chunk and not inflater.eof:
                part = inflater.decompress(chunk, allowed + 1 - size)
                size += len(part)
                if size > allowed:
                    raise TooLarge if allowed == limit else TooExpanded
                parts.append(part)
                chunk = inflater.unconsumed_tail
        except zlib.error as exc:
            raise BadCompression(f"invalid compressed data ({exc})") from None
        if inflater.unused_data:
            raise BadCompression("data after the end of the compressed stream")
    if inflater is not None and not inflater.eof:
        raise BadCompression("the compressed data is truncated")
    return b"".join(parts)
