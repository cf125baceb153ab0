"""Procedures and their namespaces.

Each version number is its own namespace; ``None`` is the default,
unversioned one. The registry only stores and finds procedures: it knows
nothing of HTTP, XML or authentication.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .params import ParamChecker, build_checker

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute that :meth:`RPCEnable.auth` sets on a function it guards.
AUTH_ATTR = "__rpcenable_auth__"
#: Attribute that registration sets, so that misuse can be detected.
REGISTERED_ATTR = "__rpcenable_registered__"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RESERVED_PREFIX = "system."


@dataclass(frozen=True)
class Procedure:
    """One exposed function, as stored in a namespace."""

    name: str
    func: Callable[..., Any]
    version: int | None
    doc: str
    is_async: bool
    checker: ParamChecker
    #: The options of ``@rpc.auth`` (a dict), or ``None`` for a public procedure.
    auth: Any = None

    @property
    def requires_auth(self) -> bool:
        return self.auth is not None


class Registry:
    """Namespaces of procedures, keyed by version (``None`` is the default)."""

    def __init__(self) -> None:
        self._namespaces: dict[int | None, dict[str, Procedure]] = {}
        self._lock = threading.Lock()

    def add(self, func: Callable[..., Any], *, name: str | None, version: int | None) -> Procedure:
        """Store ``func`` under ``name`` in the namespace of ``version``.

        :raises ValueError: if the name is taken in that namespace, reserved
            (``system.*``) or not a dotted identifier.
        :raises TypeError: if ``func`` is not callable or the version is not a
            non-negative integer.
        """
        if not callable(func):
            raise TypeError(f"@register needs a function, got {func!r}")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 0
        ):
            raise TypeError(f"version must be a non-negative int or None, got {version!r}")
        if name is None:
            name = getattr(func, "__name__", None)
            if name is None:
                raise TypeError(f"{func!r} has no __name__: register it with name=...")
        if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 255:
            raise ValueError(
                f"{name!r} is not a valid method name: use dotted identifiers such as 'math.add'"
            )
        if name.startswith(RESERVED_PREFIX):
            raise ValueError(f"{name!r}: names starting with 'system.' are reserved")
        auth = getattr(func, AUTH_ATTR, None)
        procedure = Procedure(
            name=name,
            func=func,
            version=version,
            doc=inspect.cleandoc(func.__doc__ or ""),
            is_async=inspect.iscoroutinefunction(func),
            checker=build_checker(func, skip_first=auth is not None),
            auth=auth,
        )
        with self._lock:
            namespace = self._namespaces.setdefault(version, {})
            if name in namespace:
                where = "the default namespace" if version is None else f"version {version}"
                other = namespace[name].func
                raise ValueError(
                    f"RPC method {name!r} is already registered in {where} "
                    f"(by {other.__module__}.{other.__qualname__})"
                )
            # Copy on write: readers never see a half-updated dict.
            updated = dict(namespace)
            updated[name] = procedure
            self._namespaces[version] = updated
        return procedure

    def get(self, name: str, version: int | None) -> Procedure | None:
        """The procedure called ``name`` in ``version``'s namespace, or ``None``."""
        return self._namespaces.get(version, {}).get(name)

    def has_version(self, version: int | None) -> bool:
        """Whether the namespace exists (the default one always does)."""
        return version is None or bool(self._namespaces.get(version))

    def methods(self, version: int | None) -> list[Procedure]:
        """The procedures of one namespace, sorted by name."""
        return sorted(self._namespaces.get(version, {}).values(), key=lambda p: p.name)

    def has_auth(self) -> bool:
        """Whether any namespace has a procedure that requires authentication."""
        return any(
            procedure.requires_auth
            for namespace in self._namespaces.values()
            for procedure in namespace.values()
        )

    def versions(self) -> list[int]:
        """The version numbers that have at least one procedure."""
        return sorted(v for v, ns in self._namespaces.items() if v is not None and ns)

