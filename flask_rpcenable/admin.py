"""Component placeholder: filled in by its issue."""

from __future__ import annotations

from typing import Any


def init_app(app: Any, state: Any) -> None:
    """Set this component up on ``app``."""
