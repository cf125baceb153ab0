"""Parameter checks: what each type hint accepts, strict on XML-RPC, from text on JSON."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from flask_rpcenable.errors import INVALID_PARAMS, RPCError
from flask_rpcenable.params import ParamChecker, build_checker, compile_check

WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9)
DAY = datetime.date(2024, 5, 6)


def stamp(when: datetime.datetime, day: datetime.date, data: bytes,
          maybe: datetime.datetime | None = None) -> str:
    return ""


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        (datetime.datetime, "2024-05-06T07:08:09", WHEN),
        (datetime.datetime, WHEN, WHEN),
        (datetime.date, "2024-05-06", DAY),
        (datetime.date, DAY, DAY),
        (bytes, "AAFiaW5hcnk=", b"\x00\x01binary"),
        (bytes, b"raw", b"raw"),
        (datetime.datetime | None, "2024-05-06T07:08:09", WHEN),
        (datetime.datetime | None, None, None),
    ],
)
def test_text_scalars_are_converted(annotation: Any, value: Any, expected: Any) -> None:
    check = compile_check(annotation, text_scalars=True)
    assert check is not None and check(value) == (True, expected)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (datetime.datetime, "yesterday"),
        (datetime.datetime, 1715000000),
        (datetime.date, "2024-13-01"),
        (datetime.date, WHEN),  # a datetime is no date parameter's value
        (bytes, "not base64!"),
        (bytes, "AAF"),  # bad padding
    ],
)
def test_text_that_is_no_such_value_is_refused(annotation: Any, value: Any) -> None:
    check = compile_check(annotation, text_scalars=True)
    assert check is not None and check(value)[0] is False


def test_without_text_scalars_strings_stay_strings() -> None:
    for annotation in (datetime.datetime, bytes):
        check = compile_check(annotation)
        assert check is not None and check("2024-05-06T07:08:09")[0] is False
    assert compile_check(datetime.date) is None  # no XML-RPC meaning: unchecked, as before


def test_bind_converts_by_position_and_by_name_only_when_asked() -> None:
    checker: ParamChecker = build_checker(stamp)
    args, _ = checker.bind("stamp", ["2024-05-06T07:08:09", "2024-05-06", "AAFiaW5hcnk="],
                           text_scalars=True)
    assert args == [WHEN, DAY, b"\x00\x01binary"]
    _, kwargs = checker.bind(
        "stamp", {"when": "2024-05-06T07:08:09", "day": "2024-05-06", "data": "AA==",
                  "maybe": None}, text_scalars=True)
    assert kwargs == {"when": WHEN, "day": DAY, "data": b"\x00", "maybe": None}
    with pytest.raises(RPCError) as refused:
        checker.bind("stamp", ["2024-05-06T07:08:09", "2024-05-06", "AAFiaW5hcnk="])
    assert refused.value.code == INVALID_PARAMS and "'when'" in refused.value.message
