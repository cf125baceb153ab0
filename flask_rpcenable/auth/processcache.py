"""The in-process replay cache: a Flask-Caching backend that never evicts a live nonce.

It is what ``RPCENABLE_CACHE_TYPE = "SimpleCache"`` (the default) gives the
replay cache. Flask-Caching's own SimpleCache drops its oldest entries past
its threshold, which would let a recorded nonce be replayed inside its
window; this one only drops entries that have expired.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_caching.backends.base import BaseCache

__all__ = ["ProcessNonceCache"]


class ProcessNonceCache(BaseCache):
    """The backend behind the default ``RPCENABLE_CACHE_TYPE = "SimpleCache"``.

    Flask-Caching's SimpleCache drops its oldest entries beyond
    ``threshold``, which would let a recorded nonce be replayed inside its
    window. This backend (a Flask-Caching :class:`~flask_caching.backends.base.BaseCache`,
    the documented way to add one) never evicts an entry that is still
    valid: only verified calls record a nonce, so the size stays bounded by
    legitimate traffic. Expired entries are purged at most once a second
    once the store is over its threshold. One lock guards every operation,
    so ``add`` is atomic between threads. Values are kept as they are (one
    process: nothing to serialize).

    :param threshold: the size past which expired entries are purged.
    :param default_timeout: seconds an entry lives when ``set`` or ``add``
        is given none; 0 is for ever.
    :param clock: the time in seconds (``time.time``; tests pass their own).
    :param ignore_delete_many_errors: as Flask-Caching's backends take it.
    """

    def __init__(
        self,
        threshold: int = 500,
        default_timeout: int = 300,
        clock: Callable[[], float] = time.time,
        ignore_delete_many_errors: bool = False,
    ) -> None:
        super().__init__(
            default_timeout=default_timeout, ignore_delete_many_errors=ignore_delete_many_errors
        )
        self.threshold = threshold
        self.clock = clock
        #: key -> (expiry time, 0 for never; value)
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._last_purge = 0.0

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> ProcessNonceCache:
        """How Flask-Caching makes it: ``CACHE_THRESHOLD`` and ``CACHE_DEFAULT_TIMEOUT``."""
        kwargs["threshold"] = config["CACHE_THRESHOLD"]
        return cls(*args, **kwargs)

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._live(key, self.clock())
            return None if entry is None else entry[1]

    def has(self, key: str) -> bool:
        with self._lock:
            return self._live(key, self.clock()) is not None

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        now = self.clock()
        with self._lock:
            self._purge(now)
            self._entries[key] = (self._expiry(timeout, now), value)
        return True

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        now = self.clock()
        with self._lock:
            self._purge(now)
            if self._live(key, now) is not None:
                return False
            self._entries[key] = (self._expiry(timeout, now), value)
        return True

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._entries.pop(key, None) is not None

    def clear(self) -> bool:
        with self._lock:
            self._entries.clear()
        return True

    def __len__(self) -> int:
        """Entries held, expired ones not purged yet included."""
        return len(self._entries)

    def _expiry(self, timeout: int | None, now: float) -> float:
        seconds = self.default_timeout if timeout is None else timeout
        return 0.0 if seconds == 0 else now + seconds

    def _live(self, key: str, now: float) -> tuple[float, Any] | None:
        entry = self._entries.get(key)
        if entry is None or (entry[0] != 0.0 and entry[0] <= now):
            return None
        return entry

    def _purge(self, now: float) -> None:
        """Over the threshold, drop expired entries (at most once a second)."""
        if len(self._entries) > self.threshold and now - self._last_purge >= 1.0:
            self._last_purge = now
            self._entries = {
                key: entry
                for key, entry in self._entries.items()
                if entry[0] == 0.0 or entry[0] > now
            }
