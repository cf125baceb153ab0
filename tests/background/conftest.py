"""Fixtures of the background-job tests: ``bg_app`` builds apps whose pools stop after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import background_helpers as jobs
import pytest
from flask import Flask

from flask_rpcenable.background import shutdown


@pytest.fixture
def bg_app(tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Build apps with tables created; their pools are stopped after the test."""
    apps: list[Flask] = []

    def factory(create_tables: bool = True, **config: Any) -> Flask:
        index = len(apps)
        config.setdefault("SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / f'bg{index}.sqlite'}")
        config.setdefault("TESTING", True)
        app = jobs.create_app(instance_path=str(tmp_path / f"instance{index}"), **config)
        with app.app_context():
            db = jobs.rpc.state(app).db
            if create_tables:
                db.create_all()
            else:  # the embedded database made its tables at start: take them away
                db.drop_all()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        shutdown(app, timeout=5)
