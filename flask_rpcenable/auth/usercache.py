"""The opt-in, short-lived memory of looked-up users (``RPCENABLE_AUTH_USER_CACHE_SECONDS``).

By default every authenticated call reads its user from the database, so
that a deactivated user or a changed key is refused on the very next call.
An app may trade that for speed: with ``RPCENABLE_AUTH_USER_CACHE_SECONDS =
N`` a user's row (primary key, name, stored key) is reused for at most
``N`` seconds in each process. Only rows of active users are kept: an
unknown or inactive name is read again on every call, so a new or
reactivated user works at once. The memory holds at most
:data:`USER_CACHE_SIZE` users (the oldest entry goes first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["USER_CACHE_SIZE", "TimedCache"]

#: Most users remembered per user model and process.
USER_CACHE_SIZE = 10_000

T = TypeVar("T")


class TimedCache(Generic[T]):
    """Values by name, each for at most ``seconds``, at most ``size`` of them.

    :param seconds: how long an entry is used after it was stored.
    :param size: the most entries; storing one more drops the oldest.
    :param clock: seconds from some fixed point (tests give a clock of their own).
    """

    def __init__(
        self,
        seconds: float,
        *,
        size: int = USER_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> T | None:
        """The value stored for ``name`` less than ``seconds`` ago, else ``None``."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        if self.clock() < entry[0]:
            return entry[1]
        self.forget(name)
        return None

    def put(self, name: str, value: T) -> None:
        """Store ``value`` for ``name`` from now on."""
        expires = self.clock() + self.seconds
        with self._lock:
            self._entries.pop(name, None)
            self._entries[name] = (expires, value)
            while len(self._entries) > self.size:
                del self._entries[next(iter(self._entries))]

    def forget(self, name: str) -> None:
        """Drop what is stored for ``name``."""
        with self._lock:
            self._entries.pop(name, None)

    def __len__(self) -> int:
        return len(self._entries)
