"""Numbers and the chart of the admin dashboard, from the incoming call log.

Counts and error counts come from SQL ``GROUP BY`` queries (exact). The
p50/p95 durations are computed in Python over the newest calls of each window,
at most ``RPCENABLE_ADMIN_STATS_SAMPLE`` of them, which works the same on
SQLite, PostgreSQL and any other database. Calls per hour are grouped in SQL
on SQLite and PostgreSQL, and in Python elsewhere. The chart is inline SVG
rendered here: no JavaScript, no CDN.

A ``system.multicall`` counts as the calls it carries: each entry is logged
as a call of its own (with its ``multicall_index``), so a successful
envelope is left out of every number, and its time (the sum of its entries'
times) out of the percentiles. An envelope that failed as a whole (not an
array, too many entries) ran no entry, and counts as one failed call.
"""

from __future__ import annotations

import datetime
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from markupsafe import Markup

from ..db import as_utc, utcnow

if TYPE_CHECKING:
    from ..state import RPCState

HOUR = datetime.timedelta(hours=1)
#: The method names under which a batch's envelope is logged (XML-RPC's
#: multicall, a JSON-RPC batch); their entries have rows of their own.
ENVELOPES = ("system.multicall", "rpc.batch")


def counted(table: sa.Table) -> Any:
    """The SQL condition of the rows the dashboard counts: all but successful
    batch envelopes (``system.multicall``, ``rpc.batch``), whose entries are
    counted instead."""
    c = table.c
    return sa.not_(
        sa.and_(c.method.in_(ENVELOPES), c.multicall_index.is_(None), c.ok.is_(True))
    )


def format_ms(value: float | None) -> str:
    """A duration in milliseconds, readable at every scale.

    Two decimals below 1 ms (``0.42``), one below 100 ms (``12.3``), none
    above (``1021``); ``"-"`` for ``None``. Sub-millisecond times are common
    (a call that only reads memory) and must not read as ``0.0``.
    """
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


@dataclass
class MethodStats:
    """The numbers of one method (or of all, ``method="(all)"``) in one window."""

    method: str
    calls: int = 0
    errors: int = 0
    p50: float | None = None
    p95: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class Window:
    """One period of the dashboard (last 24 hours, last 7 days)."""

    label: str
    since: datetime.datetime
    total: MethodStats
    methods: list[MethodStats] = field(default_factory=list)
    #: Whether the percentiles come from the newest calls only.
    sampled: bool = False
    sample_size: int = 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of sorted ``values``, linearly interpolated."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    rank = (len(values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (rank - low))


def window_stats(
    conn: sa.Connection, table: sa.Table, label: str, since: datetime.datetime, sample: int
) -> Window:
    """Calls, errors and p50/p95 per method since ``since``."""
    c = table.c
    errors = sa.func.sum(sa.case((c.ok.is_(False), 1), else_=0))
    rows = conn.execute(
        sa.select(c.method, sa.func.count(), errors)
        .where(c.created_at >= since, counted(table))
        .group_by(c.method)
    ).all()
    per_method = {m: MethodStats(m, int(n), int(e or 0)) for m, n, e in rows}
    durations: dict[str, list[float]] = defaultdict(list)
    sampled_rows = conn.execute(
        sa.select(c.method, c.duration_ms)
        .where(c.created_at >= since, counted(table))
        .order_by(c.created_at.desc())
        .limit(sample)
    ).all()
    for method, duration in sampled_rows:
        durations[method].append(float(duration or 0.0))
    everything: list[float] = []
    for method, stats in per_method.items():
        values = sorted(durations.get(method, ()))
        everything.extend(values)
        stats.p50, stats.p95 = percentile(values, 50), percentile(values, 95)
    everything.sort()
    total = MethodStats(
        "(all)",
        sum(s.calls for s in per_method.values()),
        sum(s.errors for s in per_method.values()),
        percentile(everything, 50),
        percentile(everything, 95),
    )
    methods = sorted(per_method.values(), key=lambda s: (-s.calls, s.method))
    return Window(label, since, total, methods, len(sampled_rows) >= sample, len(sampled_rows))


def _hour_expr(dialect: str, column: Any) -> Any | None:
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%d %H", column)
    if dialect == "postgresql":
        return sa.func.to_char(
            sa.func.date_trunc("hour", sa.func.timezone("UTC", column)), "YYYY-MM-DD HH24"
        )
    return None


def hourly_counts(
    conn: sa.Connection, table: sa.Table, start: datetime.datetime, hours: int, sample: int
) -> list[tuple[datetime.datetime, int, int]]:
    """``(hour, successes, errors)`` for each of ``hours`` hours from ``start``."""
    c = table.c
    counts: dict[datetime.datetime, list[int]] = {
        start + i * HOUR: [0, 0] for i in range(hours)
    }
    expr = _hour_expr(conn.dialect.name, c.created_at)
    if expr is not None:
        bucket = expr.label("hour")
        rows = conn.execute(
            sa.select(bucket, c.ok, sa.func.count())
            .where(c.created_at >= start, counted(table))
            .group_by(bucket, c.ok)
        ).all()
        for text, ok, n in rows:
            hour = datetime.datetime.strptime(text, "%Y-%m-%d %H").replace(
                tzinfo=datetime.timezone.utc
            )
            if hour in counts:
                counts[hour][0 if ok else 1] += int(n)
    else:  # other databases: group the newest rows in Python
        rows = conn.execute(
            sa.select(c.created_at, c.ok)
            .where(c.created_at >= start, counted(table))
            .order_by(c.created_at.desc())
            .limit(sample * 10)
        ).all()
        for created, ok in rows:
            hour = as_utc(created).replace(minute=0, second=0, microsecond=0)  # type: ignore[union-attr]
            if hour in counts:
                counts[hour][0 if ok else 1] += 1
    return [(hour, ok, err) for hour, (ok, err) in sorted(counts.items())]


def bar_chart(
    buckets: Sequence[tuple[datetime.datetime, int, int]],
    *,
    title: str,
    width: int = 720,
    height: int = 180,
) -> Markup:
    """An SVG bar chart of calls per hour, errors stacked in red on top."""
    left, right, top, bottom = 44, 8, 20, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((ok + err for _, ok, err in buckets), default=0)
    scale_max = max(peak, 1)
    n = max(len(buckets), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.8, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rpcenable-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" data-bars="{len(buckets)}" '
        f'data-total="{sum(ok + err for _, ok, err in buckets)}">',
        f"<title>{Markup.escape(title)}</title>",
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<text class="label" x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text class="label" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = max(1, math.ceil(n / 8))
    for i, (hour, ok, err) in enumerate(buckets):
        x = left + i * slot + (slot - bar_w) / 2
        ok_h = plot_h * ok / scale_max
        err_h = plot_h * err / scale_max
        stamp = hour.strftime("%Y-%m-%d %H:00 UTC")
        tip = f"{stamp}: {ok + err} calls, {err} errors"
        parts.append(f'<g class="bar" data-hour="{hour.isoformat()}" data-calls="{ok + err}">')
        parts.append(f"<title>{tip}</title>")
        parts.append(
            f'<rect class="ok" x="{x:.2f}" y="{top + plot_h - ok_h:.2f}" '
            f'width="{bar_w:.2f}" height="{ok_h:.2f}"/>'
        )
        if err:
            parts.append(
                f'<rect class="err" x="{x:.2f}" y="{top + plot_h - ok_h - err_h:.2f}" '
                f'width="{bar_w:.2f}" height="{err_h:.2f}"/>'
            )
        parts.append("</g>")
        label = hour.hour == 0 if n > 48 else i % label_every == 0
        if label:
            text = hour.strftime("%H:00") if n <= 48 else hour.strftime("%m-%d")
            parts.append(
                f'<text class="label" x="{x + bar_w / 2:.2f}" y="{height - 8}" '
                f'text-anchor="middle">{text}</text>'
            )
    parts.append("</svg>")
    # Only numbers, timestamps and the escaped title went into ``parts``.
    return Markup("".join(parts))  # noqa: S704


def build_dashboard(state: RPCState, *, sample: int, now: datetime.datetime | None = None) -> dict:
    """Everything the dashboard template shows."""
    now = now or utcnow()
    table = state.models.IncomingCall.__table__
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    with state.db.engine.connect() as conn:
        windows = [
            window_stats(conn, table, "Last 24 hours", now - datetime.timedelta(hours=24), sample),
            window_stats(conn, table, "Last 7 days", now - datetime.timedelta(days=7), sample),
        ]
        day = hourly_counts(conn, table, this_hour - 23 * HOUR, 24, sample)
        week = hourly_counts(conn, table, this_hour - 167 * HOUR, 168, sample)
    return {
        "now": now,
        "windows": windows,
        "chart_day": bar_chart(day, title="Calls per hour, last 24 hours"),
        "chart_week": bar_chart(week, title="Calls per hour, last 7 days"),
        "sample": sample,
    }
