"""The replay cache: each nonce is accepted once per user while it could be valid.

The cache is a Flask-Caching :class:`~flask_caching.Cache` (given, or built
from the ``RPCENABLE_CACHE_*`` settings); :class:`NonceStore` records nonces
in its backend with an atomic ``add`` (Redis: ``SET NX EX``). Every Redis and
memcached client built here gets short timeouts (:data:`CONNECT_TIMEOUT`,
:data:`READ_TIMEOUT`), so that a cache that is down or frozen fails a call
within seconds (fault -32400) instead of hanging it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

from flask import Flask

from .config import DEFAULTS
from .processcache import ProcessNonceCache

if TYPE_CHECKING:
    from flask_caching import Cache

    from ..state import RPCState

__all__ = [
    "NonceStore",
    "backend_of",
    "build_cache",
    "redis_client_of",
    "refuse_null_cache",
    "resolve_cache",
    "warn_about_backend",
]


#: Seconds to open a connection to Redis or memcached (the replay cache, the RQ
#: backend's enqueueing connection); a server that is down fails the call fast.
CONNECT_TIMEOUT = 1.0
#: Seconds to wait for a Redis or memcached answer. A nonce check is one
#: round trip of well under a millisecond: a server that takes this long is
#: treated as down (fault -32400) instead of holding the worker.
READ_TIMEOUT = 2.0

_SIMPLE_NAMES = {
    "simple",
    "simplecache",
    "flask_caching.backends.simplecache",
    "flask_caching.backends.simplecache.simplecache",
}
_MEMCACHED_NAMES = {
    "memcached",
    "memcachedcache",
    "flask_caching.backends.memcachedcache",
    "flask_caching.backends.memcache.memcachedcache",
}
_REDIS_NAMES = {
    "redis",
    "rediscache",
    "flask_caching.backends.rediscache",
    "flask_caching.backends.rediscache.rediscache",
}
#: The Redis client of each cache backend :func:`build_cache` made, with the
#: key prefix it was given: the nonce store sends ``SET NX EX`` on it.
_REDIS_CLIENTS: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()
#: Flask-Caching options that must not leak from the app's own ``CACHE_*``.
_CACHE_BASE: dict[str, Any] = {
    "CACHE_DEFAULT_TIMEOUT": 600,
    "CACHE_IGNORE_ERRORS": False,
    "CACHE_MEMCACHED_SERVERS": None,
    "CACHE_DIR": None,
    "CACHE_OPTIONS": None,
    "CACHE_ARGS": [],
    "CACHE_NO_NULL_WARNING": True,
    "CACHE_SOURCE_CHECK": False,
    "CACHE_ENABLE_SIGNALS": False,
    "CACHE_SERIALIZER": None,
    "CACHE_HASH_METHOD": hashlib.sha256,
    "CACHE_FILE_HASH_METHOD": hashlib.sha256,
}


def _memcached_servers(servers: Any) -> Any:
    """A pymemcache client when cachelib finds none of its memcached libraries."""
    if servers is not None and not isinstance(servers, (list, tuple, str)):
        return servers  # already a client
    if isinstance(servers, str):
        servers = [s for s in re.split(r"[,\s]+", servers) if s]
    for module in ("pylibmc", "memcache", "libmc"):
        try:
            __import__(module)
            return servers
        except ImportError:
            continue
    try:
        from pymemcache.client.hash import HashClient
    except ImportError:
        return servers
    pairs = []
    for server in servers or ["127.0.0.1:11211"]:
        host, _, port = str(server).rpartition(":")
        pairs.append((host or "127.0.0.1", int(port or 11211)))
    # noreply=False: add() must report whether the key was already there.
    return HashClient(
        pairs,
        default_noreply=False,
        use_pooling=True,
        connect_timeout=CONNECT_TIMEOUT,
        timeout=READ_TIMEOUT,
    )


def _redis_client(config: dict[str, Any]) -> Any:
    """A redis-py client for ``config``'s ``CACHE_REDIS_*`` keys, with short socket timeouts.

    redis-py waits for ever by default: with Redis frozen (not down, just not
    answering), every authenticated call would hang until the server's worker
    timeout. Timeouts given in ``RPCENABLE_CACHE_OPTIONS`` (or in the URL)
    are kept. cachelib takes a client in place of a host name.
    """
    import redis

    options = dict(config.get("CACHE_OPTIONS") or {})
    options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    options.setdefault("socket_timeout", READ_TIMEOUT)
    url = config.get("CACHE_REDIS_URL")
    if url:
        return redis.Redis.from_url(url, **options)
    return redis.Redis(
        host=config.get("CACHE_REDIS_HOST") or "localhost",
        port=config.get("CACHE_REDIS_PORT") or 6379,
        db=config.get("CACHE_REDIS_DB") or 0,
        password=config.get("CACHE_REDIS_PASSWORD"),
        **options,
    )


def build_cache(app: Flask) -> Cache:
    """A Flask-Caching :class:`~flask_caching.Cache` from the ``RPCENABLE_CACHE_*`` keys.

    ``RPCENABLE_CACHE_X`` becomes Flask-Caching's ``CACHE_X``; the app's own
    ``CACHE_*`` keys and its own cache object are left alone.
    """
    from flask_caching import Cache

    config: dict[str, Any] = {key: None for key in app.config if key.startswith("CACHE_")}
    config.update(_CACHE_BASE)
    for key, value in app.config.items():
        if key.startswith("RPCENABLE_CACHE_"):
            config["CACHE_" + key[len("RPCENABLE_CACHE_") :]] = value
    kind = str(config.get("CACHE_TYPE") or "SimpleCache")
    if kind.lower() in _SIMPLE_NAMES:
        kind = f"{ProcessNonceCache.__module__}.ProcessNonceCache"
    own_client: Any = None
    if kind.lower() in _MEMCACHED_NAMES:
        servers = config["CACHE_MEMCACHED_SERVERS"]
        config["CACHE_MEMCACHED_SERVERS"] = _memcached_servers(servers)
        if config["CACHE_MEMCACHED_SERVERS"] is not servers and hasattr(
            config["CACHE_MEMCACHED_SERVERS"], "close"
        ):
            own_client = config["CACHE_MEMCACHED_SERVERS"]
    config["CACHE_TYPE"] = kind
    for key in ("CACHE_THRESHOLD", "CACHE_KEY_PREFIX"):
        if config.get(key) is None:
            config[key] = DEFAULTS[f"RPCENABLE_{key}"]
    redis_client: Any = None
    if kind.lower() in _REDIS_NAMES and not _is_client(config.get("CACHE_REDIS_HOST")):
        redis_client = own_client = _redis_client(config)
        config["CACHE_REDIS_HOST"] = redis_client
        config["CACHE_REDIS_URL"] = config["CACHE_OPTIONS"] = None
    cache = Cache(with_jinja2_ext=False, config=config)
    cache.init_app(app)
    if redis_client is not None:
        backend = app.extensions["cache"][cache]
        _REDIS_CLIENTS[backend] = (redis_client, str(config["CACHE_KEY_PREFIX"]))
    if own_client is not None:
        # close the sockets of the client we made when the app goes away
        weakref.finalize(app, own_client.close)
    return cache


def redis_client_of(backend: Any) -> Any | None:
    """The Redis client :func:`build_cache` made for ``backend``, or ``None``."""
    found = _REDIS_CLIENTS.get(backend)
    return None if found is None else found[0]


def _is_client(host: Any) -> bool:
    """Whether ``CACHE_REDIS_HOST`` is a client already (cachelib takes one)."""
    return host is not None and not isinstance(host, str)


def backend_of(app: Flask, cache: Cache) -> Any:
    try:
        return app.extensions["cache"][cache]
    except KeyError:
        raise RuntimeError(
            "RPCEnable(cache=cache): call cache.init_app(app) before rpc.init_app(app)."
        ) from None


class NonceStore:
    """Records nonces once, atomically, in a Flask-Caching backend.

    :param backend: the cachelib backend (``app.extensions["cache"][cache]``).
    :param timeout: how long a nonce is kept (twice the window).
    """

    def __init__(self, backend: Any, timeout: int) -> None:
        from cachelib.file import FileSystemCache

        self.backend = backend
        self.timeout = timeout
        #: The client and key prefix of a Redis cache built by :func:`build_cache`.
        self._redis: tuple[Any, str] | None = _REDIS_CLIENTS.get(backend)
        # FileSystemCache.add is check-then-set: serialise it in this process.
        self._lock: threading.Lock | None = (
            threading.Lock() if isinstance(backend, FileSystemCache) else None
        )

    @staticmethod
    def key(username: str, nonce: str) -> str:
        """The cache key of a nonce: short, ASCII, safe for memcached."""
        digest = hashlib.sha256(f"{username}\n{nonce}".encode()).hexdigest()
        return f"nonce:{digest}"

    def add(self, username: str, nonce: str) -> bool:
        """Record the nonce; ``False`` when it was already recorded."""
        key = self.key(username, nonce)
        if self._redis is not None:
            # SET NX EX: one atomic command, the expiry included (cachelib's
            # add() is SETNX, then EXPIRE).
            client, prefix = self._redis
            return bool(client.set(f"{prefix}{key}", b"1", nx=True, ex=self.timeout))
        if self._lock is not None:
            with self._lock:
                return bool(self.backend.add(key, "1", timeout=self.timeout))
        return bool(self.backend.add(key, "1", timeout=self.timeout))


def refuse_null_cache(backend: Any) -> None:
    from cachelib.base import NullCache as CachelibNullCache
    from flask_caching.backends.nullcache import NullCache

    if isinstance(backend, (NullCache, CachelibNullCache)):
        raise RuntimeError(
            "flask-rpcenable: the replay cache is a NullCache, so replay protection would "
            "silently be off. Set RPCENABLE_CACHE_TYPE (e.g. 'RedisCache') or pass "
            "RPCEnable(cache=...) with a real backend."
        )


#: Replay-cache backends already warned about (two objects may share one).
_warned_backends: weakref.WeakSet[Any] = weakref.WeakSet()


def warn_about_backend(app: Flask, backend: Any) -> None:
    """Warn, once per backend, when the replay cache does not protect every worker."""
    from cachelib.file import FileSystemCache
    from cachelib.simple import SimpleCache as CachelibSimpleCache

    try:
        if backend in _warned_backends:
            return
        _warned_backends.add(backend)
    except TypeError:  # a backend that cannot be weakly referenced: warn every time
        pass
    name = type(backend).__name__
    if isinstance(backend, CachelibSimpleCache):
        app.logger.warning(
            "flask-rpcenable: the replay cache is a SimpleCache that evicts entries beyond "
            "its threshold; a nonce evicted before it expires can be replayed. Prefer "
            "a shared backend such as RedisCache."
        )
    if app.debug or app.testing:
        return
    if isinstance(backend, (CachelibSimpleCache, ProcessNonceCache)):
        app.logger.warning(
            "flask-rpcenable: the replay cache (%s) lives inside one process: with several "
            "worker processes a captured request can be replayed once per process. Use a "
            "shared cache: RPCENABLE_CACHE_TYPE='RedisCache' with RPCENABLE_CACHE_REDIS_URL, "
            "memcached, or RPCEnable(cache=...).",
            name,
        )
    elif isinstance(backend, FileSystemCache):
        app.logger.warning(
            "flask-rpcenable: the replay cache (FileSystemCache) is not atomic between "
            "processes: two workers may both accept a replayed request. Use RedisCache or "
            "memcached."
        )


def resolve_cache(app: Flask, state: RPCState) -> Cache:
    if state.cache is not None:
        return state.cache
    shared = app.extensions.get("rpcenable_auth_cache")
    if shared is None:
        shared = build_cache(app)
        app.extensions["rpcenable_auth_cache"] = shared
    return shared


