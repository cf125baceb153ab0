"""What a log row stores of a call's parameters and result, and the budget of a request.

:func:`row_texts` gives the ``params`` and ``result`` texts of a row: JSON,
redacted and cut at ``RPCENABLE_LOG_MAX_CHARS``
(:func:`~flask_rpcenable.redact.dump_json`), within what is left of the
HTTP request's ``RPCENABLE_LOG_REQUEST_BUDGET`` (:class:`PendingRows`).
Most calls carry a few short strings and numbers: :func:`plain_json` writes
those at once, without the walk that redacts and cuts, when the walk could
not change them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..redact import JSON_ENCODER, REDACTED

if TYPE_CHECKING:
    from ..calls import CallRecord

__all__ = [
    "PendingRows",
    "dump_plain",
    "over_budget_note",
    "plain_json",
    "row_texts",
    "summarize_multicall",
]

#: Exactly these types (and ``str``) are written by :func:`plain_json`: nothing
#: in them to redact, shorten or convert (a subclass may encode otherwise).
_SCALARS = frozenset({int, float, bool, type(None)})


class PendingRows:
    """The incoming-call rows of one HTTP request, not written yet, and their budget."""

    def __init__(self, budget: int, path: str, request_id: str) -> None:
        self.rows: list[tuple[Any, ...]] = []
        #: The request's path and id, the same in each of its rows.
        self.path = path
        self.request_id = request_id
        #: Bytes of params and results still allowed for this request.
        self.left = budget
        #: Rows whose params and result were not stored for lack of budget.
        self.dropped = 0


def plain_json(value: Any, max_chars: int) -> str | None:
    """``value`` as JSON text when redacting and cutting could not change it, else ``None``.

    That is a string, a number, a boolean or ``None``, or a list or tuple of
    them, whose JSON text is at most ``max_chars`` long: no struct (whose
    keys may name secrets), no bytes or dates (which are converted). Then
    :func:`~flask_rpcenable.redact.dump_json` would give the same text (the
    standard library's encoder, ``ensure_ascii=False``), at several times
    the cost of the one encoder call here. Exact types only: a subclass may
    encode otherwise. Text that is sure to be too long is not encoded.
    """
    kind = type(value)
    if kind is list or kind is tuple:
        # Each item takes at least one character and a ", " after it.
        if 3 * len(value) > max_chars + 2:
            return None
        chars = 0
        for item in value:
            item_kind = type(item)
            if item_kind is str:
                chars += len(item)
            elif item_kind not in _SCALARS:
                return None
        if chars > max_chars:
            return None
    elif kind is str:
        if len(value) > max_chars:
            return None
    elif kind not in _SCALARS:
        return None
    text = JSON_ENCODER.encode(value)
    return text if len(text) <= max_chars else None


def row_texts(
    record: CallRecord,
    envelope: bool,
    pending: PendingRows | None,
    dump: Callable[[Any], str],
    budget: int,
) -> tuple[str, str | None]:
    """The params and result texts of ``record``'s row, within the request's budget.

    :param envelope: the record is a ``system.multicall`` or a batch around
        its entries: its params are summed up to the method names, its
        result to counts.
    :param pending: the request's rows, whose budget the texts use up
        (``None`` outside a request: no budget).
    :param dump: a value to redacted, cut JSON text.
    :param budget: ``RPCENABLE_LOG_REQUEST_BUDGET``, for the note.
    """
    if pending is not None and pending.left <= 0:
        # Nothing fits any more: do not even serialize.
        pending.dropped += 1
        return over_budget_note(budget), None
    params = summarize_multicall(record.params) if envelope else record.params
    result = record.result
    if envelope and isinstance(result, list):
        # Each sub-call's row holds its result: count them here.
        faults = sum(1 for r in result if isinstance(r, dict) and "result" not in r)
        result = {"results": len(result) - faults, "faults": faults}
    params_text = dump(params)
    result_text = dump(result) if record.fault_code is None else None
    if pending is None:
        return params_text, result_text
    size = len(params_text.encode("utf-8")) + (
        len(result_text.encode("utf-8")) if result_text is not None else 0
    )
    if size > pending.left:
        pending.dropped += 1
        return over_budget_note(budget), None
    pending.left -= size
    return params_text, result_text


def over_budget_note(budget: int) -> str:
    """What a row stores instead of its params and result once the budget is used up."""
    return dump_plain(f"[not stored: RPCENABLE_LOG_REQUEST_BUDGET ({budget} bytes) used up]")


def dump_plain(text: str) -> str:
    """``text`` as a JSON string."""
    return json.dumps(text, ensure_ascii=False)


def summarize_multicall(params: list[Any]) -> list[Any]:
    """The multicall envelope's parameters as logged: the method names only.

    Each sub-call has its own row with its own (redacted) parameters, so the
    envelope does not repeat them (they may hold auth arguments).
    """
    if len(params) != 1 or not isinstance(params[0], list):
        return [REDACTED] * len(params)
    names = []
    for call in params[0]:
        name = call.get("methodName") if isinstance(call, dict) else None
        names.append(name if isinstance(name, str) else "?")
    return [{"methods": names}]
