"""The ``RPCENABLE_BACKGROUND_*`` settings of background jobs, read once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..redact import DEFAULT_REDACT_KEYS, redact_keys
from ..settings import bool_setting, int_setting, retention_days, seconds_setting, set_defaults

#: Settings of this component and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_BACKGROUND": "thread",
    "RPCENABLE_BACKGROUND_WORKERS": 2,
    "RPCENABLE_BACKGROUND_QUEUE_SIZE": 1000,
    "RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT": 20.0,
    "RPCENABLE_BACKGROUND_RETRIES": 0,
    "RPCENABLE_BACKGROUND_RECORDS": True,
    "RPCENABLE_BACKGROUND_RETENTION_DAYS": 30,
    "RPCENABLE_BACKGROUND_MAIL_THROTTLE": 60.0,
    "RPCENABLE_BACKGROUND_MAIL_TIMEOUT": 10.0,
    "RPCENABLE_ADMINS": None,
    "RPCENABLE_RQ_URL": "redis://127.0.0.1:6379/0",
    "RPCENABLE_RQ_QUEUE": "rpcenable",
    "RPCENABLE_RQ_JOB_TIMEOUT": None,
}

BACKENDS = ("thread", "rq", "sync")
#: Seconds to connect to the RQ backend's Redis, and to wait for its answers
#: when scheduling a job (a request must not hang on a frozen Redis). The
#: worker sets its own read timeout (it waits for jobs with blocking reads).
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_READ_TIMEOUT = 2.0
#: Why the shutdown timeout is 20 s: gunicorn's ``--graceful-timeout``, uWSGI's
#: ``worker-reload-mercy`` and Kubernetes' termination grace period are 30 s or
#: more, and their clock starts before ours (the worker first finishes its
#: requests). Draining must end, and the leftovers be recorded, before the
#: server kills the process.

#: Used when ``RPCENABLE_LOG_REDACT_KEYS`` is not set (the call log sets it).
DEFAULT_REDACT_KEYS = DEFAULT_REDACT_KEYS


def _int(config: Any, key: str, minimum: int) -> int:
    return int_setting(key, config[key], minimum)


def _seconds(config: Any, key: str) -> float:
    return seconds_setting(key, config[key])


def _admins(config: Any) -> tuple[Any, ...]:
    admins = config.get("RPCENABLE_ADMINS")
    if admins is None:
        admins = config.get("ADMINS")
    if not admins:
        return ()
    if isinstance(admins, str):
        admins = [admins]
    result = []
    for admin in admins:
        if isinstance(admin, (list, tuple)) and len(admin) == 2:
            result.append((str(admin[0]), str(admin[1])))
        elif isinstance(admin, str) and admin:
            result.append(admin)
        else:
            raise RuntimeError(
                "RPCENABLE_ADMINS (or ADMINS) must be a list of addresses or (name, address) "
                f"pairs, got {admin!r} in it"
            )
    return tuple(result)


@dataclass(frozen=True)
class BackgroundSettings:
    """The background-job settings of one app."""

    backend: str
    workers: int
    queue_size: int
    shutdown_timeout: float
    retries: int
    records: bool
    retention_days: float | None
    mail_throttle: float
    #: SMTP socket timeout; ``None`` (setting 0) waits as long as the OS does.
    mail_timeout: float | None
    admins: tuple[Any, ...]
    redact_keys: tuple[str, ...]
    rq_url: str
    rq_queue: str
    rq_job_timeout: int | None

    @classmethod
    def from_app(cls, app: Flask) -> BackgroundSettings:
        """Set the defaults into ``app.config`` and read them.

        :raises RuntimeError: on a value of the wrong type or range.
        """
        config = app.config
        set_defaults(app, DEFAULTS)
        backend = str(config["RPCENABLE_BACKGROUND"]).lower()
        if backend not in BACKENDS:
            raise RuntimeError(f"RPCENABLE_BACKGROUND must be one of {BACKENDS}, got {backend!r}")
        job_timeout = config["RPCENABLE_RQ_JOB_TIMEOUT"]
        if job_timeout is not None:
            job_timeout = _int(config, "RPCENABLE_RQ_JOB_TIMEOUT", 1)
        queue_name = config["RPCENABLE_RQ_QUEUE"]
        if not isinstance(queue_name, str) or not queue_name:
            raise RuntimeError(f"RPCENABLE_RQ_QUEUE must be a non-empty string, got {queue_name!r}")
        url = config["RPCENABLE_RQ_URL"]
        if not isinstance(url, str) or not url:
            raise RuntimeError("RPCENABLE_RQ_URL must be a Redis URL (redis://host:port/db)")
        retention = retention_days(
            "RPCENABLE_BACKGROUND_RETENTION_DAYS", config["RPCENABLE_BACKGROUND_RETENTION_DAYS"]
        )
        keys = config.get("RPCENABLE_LOG_REDACT_KEYS", DEFAULT_REDACT_KEYS)
        return cls(
            backend=backend,
            workers=_int(config, "RPCENABLE_BACKGROUND_WORKERS", 1),
            queue_size=_int(config, "RPCENABLE_BACKGROUND_QUEUE_SIZE", 1),
            shutdown_timeout=_seconds(config, "RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT"),
            retries=_int(config, "RPCENABLE_BACKGROUND_RETRIES", 0),
            records=bool_setting(
                "RPCENABLE_BACKGROUND_RECORDS", config["RPCENABLE_BACKGROUND_RECORDS"]
            ),
            retention_days=retention,
            mail_throttle=_seconds(config, "RPCENABLE_BACKGROUND_MAIL_THROTTLE"),
            mail_timeout=_seconds(config, "RPCENABLE_BACKGROUND_MAIL_TIMEOUT") or None,
            admins=_admins(config),
            redact_keys=redact_keys(keys),
            rq_url=url,
            rq_queue=queue_name,
            rq_job_timeout=job_timeout,
        )
