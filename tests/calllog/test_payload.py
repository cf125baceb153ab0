"""The call log's shortcut for plain values: the same text as the full redact-and-cut walk."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_rpcenable.calllog import payload
from flask_rpcenable.calllog.payload import plain_json
from flask_rpcenable.redact import DEFAULT_REDACT_KEYS, dump_json, redact_keys

KEYS = redact_keys(DEFAULT_REDACT_KEYS)


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


def logged(value: Any, max_chars: int) -> str:
    """What the call log stores (CallLogger.dump): the shortcut, else the walk."""
    text = plain_json(value, max_chars)
    return text if text is not None else dump_json(value, max_chars, KEYS)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=130)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=60)
        | st.tuples(inner, inner)
        | st.dictionaries(st.sampled_from(["a", "token", "api_key", "n"]), inner, max_size=4)
    ),
    max_leaves=80,
)


@settings(max_examples=400, deadline=None)
@given(value=values, max_chars=st.sampled_from([100, 101, 160]))
def test_the_shortcut_gives_the_text_of_the_full_walk(value: Any, max_chars: int) -> None:
    assert logged(value, max_chars) == dump_json(value, max_chars, KEYS)


@pytest.mark.parametrize(
    "value",
    [
        "Hello, world!",
        "",
        'quotes " and \\ and \n and é and \u2028',
        0,
        -(10**30),
        2.5,
        float("nan"),
        True,
        None,
        [],
        ["Hello, world!"],
        [1, "a", None, False, 1.5],
        ("a", 1),
        "x" * 98,  # 100 characters of JSON: exactly the limit
        ["x" * 96],  # the same in a list
        [1] * 33,  # "[1, 1, ..., 1]": 99 characters
    ],
)
def test_plain_values_take_the_shortcut(value: Any) -> None:
    text = plain_json(value, 100)
    assert text is not None and text == dump_json(value, 100, KEYS)


@pytest.mark.parametrize(
    "value",
    [
        {"password": "pw"},  # a struct: its keys may name secrets
        [{"a": 1}],
        [[1]],
        b"bytes",
        datetime.datetime(2024, 1, 1),
        Level.LOW,  # subclasses may encode otherwise
        Name("n"),
        ["é" * 40, "é" * 40, "é" * 40],  # over the limit
        "x" * 99,  # 101 characters of JSON
        ["x" * 97],
        [1] * 34,  # 102 characters
        ["x" * 90] * 1000,  # given up at the second item
        list(range(1000)),
    ],
)
def test_other_values_take_the_full_walk(value: Any) -> None:
    assert plain_json(value, 100) is None


@pytest.mark.parametrize(
    "value",
    [["x" * 1000] * 20, ("y" * 5000, "z" * 5001), [0] * 20_000, "w" * 10_001],
    ids=["long-strings", "two-halves", "many-items", "long-string"],
)
def test_text_sure_to_be_too_long_is_not_encoded(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain value whose text must pass the limit costs no encoding at all."""
    encoded: list[Any] = []
    monkeypatch.setattr(payload.JSON_ENCODER, "encode", encoded.append)
    assert plain_json(value, 10_000) is None
    assert encoded == []
