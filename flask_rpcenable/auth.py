"""Component placeholder: filled in by its issue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .registry import AUTH_ATTR


def mark_auth(func: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    """Mark ``func`` as requiring authentication."""
    setattr(func, AUTH_ATTR, options)
    return func


def init_app(app: Any, state: Any) -> None:
    """Set this component up on ``app``."""
