"""``@rpc.auth``: marking a function as one that requires authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..registry import AUTH_ATTR

__all__ = ["is_sql_criterion", "mark_auth"]

_AUTH_OPTIONS = frozenset({"user_model", "user_filter"})


def is_sql_criterion(value: Any) -> bool:
    """Whether ``value`` is a SQLAlchemy criterion (``User.name == "x"``)."""
    return isinstance(value, sa.sql.ColumnElement)


def mark_auth(func: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    """Mark ``func`` as requiring authentication (what ``@rpc.auth`` does).

    :param user_model: the API user model for this function (a class or a
        dotted path) instead of ``RPCENABLE_USER_MODEL``. Such a function is
        reachable with scheme v1 only (scheme v2 verifies the request against
        the app's user model before the method is known).
    :param user_filter: who of the active users may call it: a callable
        ``f(user) -> bool``, or a SQLAlchemy criterion (or a list of them)
        on the user model, e.g. ``APIUser.username.startswith("partner-")``.
        A user it refuses gets the same fault 406 as a wrong signature.
    :raises TypeError: on an unknown option or a filter of the wrong type.
    """
    unknown = set(options) - _AUTH_OPTIONS
    if unknown:
        raise TypeError(
            f"@rpc.auth got unknown options {sorted(unknown)}; it takes user_model= and "
            "user_filter="
        )
    user_filter = options.get("user_filter")
    if user_filter is not None:
        criteria = user_filter if isinstance(user_filter, (list, tuple)) else None
        ok = (
            is_sql_criterion(user_filter)
            or (criteria is not None and criteria and all(map(is_sql_criterion, criteria)))
            or (criteria is None and callable(user_filter))
        )
        if not ok:
            raise TypeError(
                "@rpc.auth(user_filter=...) takes a callable f(user) -> bool or SQLAlchemy "
                f"criteria, got {user_filter!r}"
            )
        if criteria is not None:
            options["user_filter"] = tuple(criteria)
    setattr(func, AUTH_ATTR, dict(options))
    return func
