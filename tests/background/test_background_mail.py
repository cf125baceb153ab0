"""Error mail of failed background jobs, through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import background_helpers as jobs
import pytest
from flask import Flask
from flask_mail import Mail

from flask_rpcenable.background import BackgroundJobFailed, shutdown
from flask_rpcenable.background.core import get_background

ADMINS = ["ops@example.com", ("Dev Team", "dev@example.com")]


@pytest.fixture
def smtp() -> Iterator[tuple[jobs.MailSink, int]]:
    yield from jobs.smtp_server()


@pytest.fixture
def mail_app(tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(port: int, **config: Any) -> Flask:
        settings: dict[str, Any] = {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / f'mail{len(apps)}.sqlite'}",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "MAIL_SUPPRESS_SEND": False,  # TESTING would suppress it
            "MAIL_DEFAULT_SENDER": "app@example.com",
            "RPCENABLE_ADMINS": ADMINS,
            "RPCENABLE_BACKGROUND_MAIL_TIMEOUT": 5,
        }
        settings.update(config)
        app = jobs.create_app(instance_path=str(tmp_path / "instance"), **settings)
        with app.app_context():
            jobs.rpc.state(app).db.create_all()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        shutdown(app, timeout=5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail_and_wait(app: Flask, job: Any = None, *args: Any, **kwargs: Any) -> None:
    job = job or jobs.fail
    args = args or ("boom",)
    with app.app_context():
        handle = job(*args, **kwargs)
    with pytest.raises(BackgroundJobFailed):
        handle.result(timeout=15)


def test_error_mail_says_what_failed_and_hides_secrets(
    smtp: tuple[jobs.MailSink, int], mail_app: Callable[..., Flask]
) -> None:
    sink, port = smtp
    app = mail_app(port)
    with app.app_context():
        handle = jobs.fail("disk on fire", api_token="sk-live-0123456789", note="public note")
    with pytest.raises(BackgroundJobFailed):
        handle.result(timeout=15)  # returns after the error report was made
    assert len(sink.envelopes) == 1
    envelope = sink.envelopes[0]
    assert sorted(envelope.rcpt_tos) == ["dev@example.com", "ops@example.com"]
    assert envelope.mail_from == "app@example.com"
    message = sink.messages[0]
    assert str(message["Subject"]).strip() == (
        "[flask-rpcenable] Background job failed: background_helpers.fail"
    )
    assert "ops@example.com" in message["To"] and "Dev Team <dev@example.com>" in message["To"]
    body = jobs.body_of(message)
    assert "Function:  background_helpers.fail" in body
    assert f"Job id:    {handle.id}" in body
    assert "Traceback (most recent call last):" in body
    assert "RuntimeError: disk on fire" in body
    assert "api_token=***" in body and "note='public note'" in body
    assert "sk-live-0123456789" not in envelope.content.decode("utf-8", "replace")
    assert "Host:" in body and "Time:" in body and "Attempt:   1 of 1" in body


def test_mail_is_set_up_on_the_app_when_missing_and_an_existing_one_is_used(
    smtp: tuple[jobs.MailSink, int], mail_app: Callable[..., Flask]
) -> None:
    sink, port = smtp
    app = mail_app(port, MAIL_DEFAULT_SENDER=None)
    assert "mail" not in app.extensions
    fail_and_wait(app)
    assert "mail" in app.extensions  # set up at the first mail
    assert sink.envelopes[0].mail_from.startswith("flask-rpcenable@")

    own = mail_app(port)
    Mail().init_app(own)
    own.extensions["mail"].default_sender = "own-mail@example.com"
    fail_and_wait(own)
    assert sink.envelopes[-1].mail_from == "own-mail@example.com"


def test_admins_fall_back_to_ADMINS_and_no_admins_means_no_mail(
    smtp: tuple[jobs.MailSink, int],
    mail_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, port = smtp
    app = mail_app(port, RPCENABLE_ADMINS=None, ADMINS=["fallback@example.com"])
    fail_and_wait(app)
    assert sink.envelopes[-1].rcpt_tos == ["fallback@example.com"]

    count = len(sink.envelopes)
    quiet = mail_app(port, RPCENABLE_ADMINS=None)
    fail_and_wait(quiet)
    assert len(sink.envelopes) == count
    assert any("not mailed: set RPCENABLE_ADMINS" in r.getMessage() for r in caplog.records)


def test_throttle_one_mail_per_function_per_window(
    smtp: tuple[jobs.MailSink, int], mail_app: Callable[..., Flask]
) -> None:
    sink, port = smtp
    app = mail_app(port, RPCENABLE_BACKGROUND="sync", RPCENABLE_BACKGROUND_MAIL_THROTTLE=60)
    clock = FakeClock()
    get_background(app).backend.throttle.clock = clock
    for i in range(3):
        fail_and_wait(app, None, f"failure {i}")
    fail_and_wait(app, jobs.other_fail, "another function")
    # Long subjects are folded by Flask-Mail; unfolded they may keep a leading space.
    subjects = [str(m["Subject"]).strip() for m in sink.messages]
    assert subjects == [
        "[flask-rpcenable] Background job failed: background_helpers.fail",
        "[flask-rpcenable] Background job failed: background_helpers.other_fail",
    ]
    assert "failure 0" in jobs.body_of(sink.messages[0])

    clock.now += 59
    fail_and_wait(app, None, "still held")
    assert len(sink.envelopes) == 2
    clock.now += 2  # the window is over
    fail_and_wait(app, None, "after the window")
    assert len(sink.envelopes) == 3
    body = jobs.body_of(sink.messages[2])
    assert "after the window" in body
    assert "3 earlier failure(s) of background_helpers.fail were not mailed" in body


def test_smtp_down_never_stops_the_worker(
    mail_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    port = jobs.free_port()  # nothing listens there
    app = mail_app(port, RPCENABLE_BACKGROUND_WORKERS=1, RPCENABLE_BACKGROUND_MAIL_THROTTLE=0)
    path = str(tmp_path / "after.txt")
    with app.app_context():
        failures = [jobs.fail(f"down {i}") for i in range(2)]
        after = jobs.append_line(path, "still working")
    for handle in failures:
        with pytest.raises(BackgroundJobFailed):
            handle.result(timeout=15)
    assert after.result(timeout=15) == "still working"
    errors = [r for r in caplog.records if "Could not mail the failure" in r.getMessage()]
    assert len(errors) == 2 and all(r.levelno == logging.ERROR for r in errors)
    assert {r.name for r in errors} == {"flask_rpcenable.background"}
    assert get_background(app).backend._threads  # the worker thread is alive

    # The SMTP server comes back: the next mail counts the failures not mailed.
    for sink, _ in jobs.smtp_server(port):
        fail_and_wait(app, None, "back up")
        assert len(sink.envelopes) == 1
        body = jobs.body_of(sink.messages[0])
        assert "2 earlier failure(s) of background_helpers.fail were not mailed" in body


def test_mail_failure_in_many_threads_at_once(
    smtp: tuple[jobs.MailSink, int], mail_app: Callable[..., Flask]
) -> None:
    """Concurrent failures of one function: one mail, the others held back."""
    sink, port = smtp
    app = mail_app(port, RPCENABLE_BACKGROUND_WORKERS=4, RPCENABLE_BACKGROUND_MAIL_THROTTLE=3600)
    barrier = threading.Barrier(4, timeout=10)

    def fail_together(i: int) -> None:
        barrier.wait()
        raise RuntimeError(f"together {i}")

    from flask_rpcenable.background import postpone

    job = postpone(fail_together)
    with app.app_context():
        handles = [job(i) for i in range(4)]
    for handle in handles:
        with pytest.raises(BackgroundJobFailed):
            handle.result(timeout=15)
    assert len(sink.envelopes) == 1
