"""The error mail of failed background jobs: argument summaries, throttling, sending.

Mail goes through Flask-Mail with the app's ``MAIL_*`` settings (a
:class:`flask_mail.Mail` is set up on the app at the first mail if the app
has none). Sending never raises: a mail that cannot be sent is logged.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import reprlib
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import Flask

from ..redact import REDACTED, is_secret_key

log = logging.getLogger("flask_rpcenable.background")

#: Longest argument summary kept in records and mail.
ARGUMENTS_LENGTH = 2000
#: Longest traceback put in a mail (its end is kept).
MAIL_TRACEBACK_LENGTH = 50_000
SUBJECT_PREFIX = "[flask-rpcenable]"
_ITEMS = 20

_repr = reprlib.Repr()
_repr.maxlevel = 4
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlong = 60
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdict = _ITEMS

_mail_lock = threading.Lock()


def host_name() -> str:
    """This machine's name and the process id, for records and mail."""
    return f"{socket.gethostname()} (pid {os.getpid()})"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


# -- arguments ----------------------------------------------------------------


class _Redacted:
    def __repr__(self) -> str:
        return REDACTED


_REDACTED = _Redacted()


def _redact(value: Any, redact_keys: tuple[str, ...], depth: int = 0) -> Any:
    if depth > _repr.maxlevel:
        return value
    if isinstance(value, dict):
        return {
            key: _REDACTED
            if is_secret_key(key, redact_keys)
            else _redact(item, redact_keys, depth + 1)
            for key, item in itertools.islice(value.items(), _ITEMS + 1)
        }
    if isinstance(value, (list, tuple)):
        items = [_redact(v, redact_keys, depth + 1) for v in itertools.islice(value, _ITEMS + 1)]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def summarize_arguments(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    redact_keys: tuple[str, ...],
    limit: int = ARGUMENTS_LENGTH,
) -> str:
    """A short, redacted text of a call's arguments: ``a=1, password=***``.

    A parameter or dict key whose name contains one of ``redact_keys``
    (compared lowercase, letters and digits only) shows ``***``; long values
    and the whole text are cut.
    """
    try:
        bound = inspect.signature(func).bind_partial(*args, **kwargs)
        items: list[tuple[str, Any]] = list(bound.arguments.items())
    except (TypeError, ValueError):
        items = [(f"[{i}]", a) for i, a in enumerate(args)] + list(kwargs.items())
    parts = []
    for name, value in items:
        if is_secret_key(name, redact_keys):
            text = REDACTED
        else:
            try:
                text = _repr.repr(_redact(value, redact_keys))
            except Exception:  # a broken __repr__ must not stop the job
                text = f"<{type(value).__name__}>"
        parts.append(f"{name}={text}")
    summary = ", ".join(parts)
    return summary if len(summary) <= limit else summary[: limit - 3] + "..."


# -- throttling ---------------------------------------------------------------


class Throttle(Protocol):
    """Decides whether a failure is mailed now or held back."""

    def acquire(self, key: str, window: float) -> int | None:
        """``None`` to hold this mail back (and count it); else the number held back."""

    def give_back(self, key: str, count: int) -> None:
        """Count ``count`` failures as held back again (their mail was not sent)."""


class MemoryThrottle:
    """One mail per key per window, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def acquire(self, key: str, window: float) -> int | None:
        with self._lock:
            now = self.clock()
            last = self._last.get(key)
            if window > 0 and last is not None and now - last < window:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)

    def give_back(self, key: str, count: int) -> None:
        with self._lock:
            self._held[key] = self._held.get(key, 0) + count


# -- the mail -----------------------------------------------------------------


@dataclass
class FailureReport:
    """What an error mail says about one failed job."""

    job_id: str
    name: str
    arguments: str
    error: str
    traceback: str
    backend: str
    attempt: int
    attempts: int
    host: str
    when: datetime

    def subject(self) -> str:
        return f"{SUBJECT_PREFIX} Background job failed: {self.name}"

    def body(self, held_back: int) -> str:
        lines = [
            "A background job failed.",
            "",
            f"Function:  {self.name}",
            f"Job id:    {self.job_id}",
            f"Backend:   {self.backend}",
            f"Attempt:   {self.attempt} of {self.attempts}",
            f"Host:      {self.host}",
            f"Time:      {self.when.isoformat()}",
            f"Arguments: {self.arguments}",
            f"Error:     {self.error}",
            "",
        ]
        if held_back:
            lines += [
                f"{held_back} earlier failure(s) of {self.name} were not mailed "
                "(throttled by RPCENABLE_BACKGROUND_MAIL_THROTTLE, or the mail failed).",
                "",
            ]
        tb = self.traceback
        if len(tb) > MAIL_TRACEBACK_LENGTH:
            tb = "...\n" + tb[-MAIL_TRACEBACK_LENGTH:]
        lines += [tb]
        return "\n".join(lines)


def _smtp_connection(mail_state: Any, timeout: float | None) -> Any:
    """A Flask-Mail connection whose SMTP socket has a timeout (Flask-Mail sets none)."""
    from flask_mail import Connection

    class TimeoutConnection(Connection):
        def configure_host(self) -> smtplib.SMTP:
            mail = self.mail
            kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            smtp_class = smtplib.SMTP_SSL if mail.use_ssl else smtplib.SMTP
            host = smtp_class(mail.server, mail.port, **kwargs)
            host.set_debuglevel(int(mail.debug))
            if mail.use_tls:
                host.starttls()
            if mail.username and mail.password:
                host.login(mail.username, mail.password)
            return host

    return TimeoutConnection(mail_state)


def _mail_state(app: Flask) -> Any:
    state = app.extensions.get("mail")
    if state is None:
        from flask_mail import Mail

        with _mail_lock:
            state = app.extensions.get("mail")
            if state is None:
                state = Mail(app).state
    return state


def send_mail(
    app: Flask,
    recipients: Iterable[Any],
    subject: str,
    body: str,
    timeout: float | None,
) -> None:
    """Send a plain-text mail with Flask-Mail; needs an app context of ``app``.

    :raises Exception: whatever SMTP raises; callers log it.
    """
    from flask_mail import Message

    state = _mail_state(app)
    sender = state.default_sender or f"flask-rpcenable@{socket.gethostname()}"
    message = Message(subject=subject, recipients=list(recipients), body=body, sender=sender)
    with _smtp_connection(state, timeout) as connection:
        connection.send(message)


class ErrorReporter:
    """Mails failures to the admins, throttled per function; never raises."""

    def __init__(
        self,
        admins: tuple[Any, ...],
        throttle: Throttle,
        window: float,
        timeout: float | None,
    ) -> None:
        self.admins = admins
        self.throttle = throttle
        self.window = window
        self.timeout = timeout
        self._warned = False

    def report(self, app: Flask, report: FailureReport) -> bool:
        """Mail ``report`` unless throttled; ``True`` when a mail went out."""
        if not self.admins:
            if not self._warned:
                self._warned = True
                log.warning(
                    "Background job failures are not mailed: set RPCENABLE_ADMINS (or ADMINS)."
                )
            return False
        try:
            held = self.throttle.acquire(report.name, self.window)
        except Exception as exc:  # a broken throttle store must not stop the mail
            log.warning("Mail throttle unavailable (%s); mailing anyway.", type(exc).__name__)
            held = 0
        if held is None:
            log.info(
                "Error mail for background job %s (%s) held back by the throttle.",
                report.job_id,
                report.name,
            )
            return False
        try:
            send_mail(app, self.admins, report.subject(), report.body(held), self.timeout)
        except Exception as exc:
            log.error(
                "Could not mail the failure of background job %s (%s) to the admins: %s: %s",
                report.job_id,
                report.name,
                type(exc).__name__,
                exc,
            )
            try:
                self.throttle.give_back(report.name, held + 1)
            except Exception:
                log.debug("Mail throttle unavailable while giving back", exc_info=True)
            return False
        return True
