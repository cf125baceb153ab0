"""Checking call parameters against a function's signature and type hints.

The checker binds a call's parameters (a list by position, or a dict by
name) to the function's parameters, or raises -32602 naming the method and
its signature. Type hints that map to wire types are enforced; anything else
is passed through unchecked.
"""

from __future__ import annotations

import datetime
import inspect
import types
import typing
from base64 import b64decode
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import INVALID_PARAMS, RPCError

#: Wire type names (XML-RPC's), used by ``system.methodSignature`` and in errors.
_XMLRPC_TYPE_NAMES: dict[Any, str] = {
    bool: "boolean",
    int: "int",
    float: "double",
    str: "string",
    bytes: "base64",
    bytearray: "base64",
    datetime.datetime: "dateTime.iso8601",
    list: "array",
    tuple: "array",
    dict: "struct",
    type(None): "nil",
}

#: XML-RPC types of authentication parameters that are not strings.
_AUTH_PARAM_TYPES = {"timestamp": "int"}

#: The four leading parameters of authentication scheme v1.
V1_AUTH_PARAMS = ("nonce", "timestamp", "username", "signature")

_NoneType = type(None)


def type_name(annotation: Any) -> str:
    """The name of the wire type a type hint stands for (``"int"``, ``"struct"``...)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "undef"
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not _NoneType]
        if len(members) == 1:
            return type_name(members[0])
        return "undef"
    return _XMLRPC_TYPE_NAMES.get(origin, "undef")


#: A type check worked out once per parameter: the value in, ``(accepted,
#: value to pass on)`` out. ``None`` stands for one that accepts anything.
Check = Callable[[Any], tuple[bool, Any]]


def compile_check(annotation: Any, *, text_scalars: bool = False) -> Check | None:
    """The check for ``annotation``, worked out once.

    ``int`` is accepted where ``float`` is annotated (and converted), a
    ``bool`` is never taken for an ``int``, ``list`` and ``tuple`` are both
    arrays.

    :param text_scalars: for a wire with no date or binary type (JSON): a
        ``datetime`` or ``date`` may also come as an ISO 8601 string and
        ``bytes`` as a base64 string, converted here (what is not such a
        string is refused).
    :returns: ``None`` for an annotation that accepts anything (none at all,
        ``Any``, or one with no XML-RPC meaning).
    """
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        members: list[Check | None] = []
        for member in typing.get_args(annotation):
            members.append(compile_check(member, text_scalars=text_scalars))
            if members[-1] is None:  # accepts anything: later members never matter
                break
        if members and members[0] is None:
            return None
        return _union_check(tuple(members))
    if annotation is None or origin is _NoneType:
        return _check_none
    if origin is float:
        return _check_float
    if origin is int:
        return _check_int
    if origin is bool:
        return _check_bool
    if origin in (list, tuple, Sequence):
        return _check_tuple if origin is tuple else _check_array
    if origin in (bytes, bytearray):
        return _check_bytes_or_base64 if text_scalars else _check_bytes
    if text_scalars and origin in (datetime.datetime, datetime.date):
        return _iso_check(origin)
    if origin in (str, dict, datetime.datetime):
        return _instance_check(origin)
    return None


def _union_check(members: tuple[Check | None, ...]) -> Check:
    def check(value: Any) -> tuple[bool, Any]:
        for member in members:
            if member is None:
                return True, value
            ok, converted = member(value)
            if ok:
                return True, converted
        return False, value

    return check


def _instance_check(cls: type) -> Check:
    def check(value: Any) -> tuple[bool, Any]:
        return isinstance(value, cls), value

    return check


def _check_none(value: Any) -> tuple[bool, Any]:
    return value is None, value


def _check_float(value: Any) -> tuple[bool, Any]:
    if isinstance(value, float):
        return True, value
    if isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)
    return False, value


def _check_int(value: Any) -> tuple[bool, Any]:
    return isinstance(value, int) and not isinstance(value, bool), value


def _check_bool(value: Any) -> tuple[bool, Any]:
    return isinstance(value, bool), value


def _check_array(value: Any) -> tuple[bool, Any]:
    return isinstance(value, (list, tuple)), value


def _check_tuple(value: Any) -> tuple[bool, Any]:
    if isinstance(value, (list, tuple)):
        return True, tuple(value)
    return False, value


def _check_bytes(value: Any) -> tuple[bool, Any]:
    return isinstance(value, (bytes, bytearray)), value


def _check_bytes_or_base64(value: Any) -> tuple[bool, Any]:
    if isinstance(value, str):
        try:
            return True, b64decode(value, validate=True)
        except ValueError:  # binascii.Error included
            return False, value
    return _check_bytes(value)


def _iso_check(cls: type[datetime.date]) -> Check:
    """``cls`` (``datetime`` or ``date``), or an ISO 8601 string of one, converted."""

    def check(value: Any) -> tuple[bool, Any]:
        if isinstance(value, str):
            try:
                return True, cls.fromisoformat(value)
            except ValueError:
                return False, value
        # A datetime is a date too, but not what a date parameter means.
        return isinstance(value, cls) and (cls is datetime.datetime or type(value) is cls), value

    return check


@dataclass(frozen=True)
class ParamChecker:
    """Binds wire parameters to a function's positional parameters."""

    display: str
    names: tuple[str, ...]
    annotations: tuple[Any, ...]
    required: int
    var_positional: Any
    has_var_positional: bool
    return_annotation: Any

    #: One compiled check per entry of ``annotations`` (``None``: anything
    #: goes), then the one of ``*args``; ``None`` as a whole when no
    #: parameter is checked at all.
    _checks: tuple[Check | None, ...] | None = field(init=False, repr=False, compare=False)
    #: The same for a wire whose dates and bytes come as text (JSON).
    _text_checks: tuple[Check | None, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attribute, text_scalars in (("_checks", False), ("_text_checks", True)):
            checks = tuple(
                compile_check(a, text_scalars=text_scalars)
                for a in (*self.annotations, self.var_positional)
            )
            unchecked = checks.count(None) == len(checks)
            object.__setattr__(self, attribute, None if unchecked else checks)

    def bind(
        self,
        method: str,
        params: Sequence[Any] | Mapping[str, Any],
        *,
        text_scalars: bool = False,
    ) -> tuple[list[Any], dict[str, Any]]:
        """Check ``params`` (by position, or by name) and return ``(args, kwargs)``.

        :param text_scalars: the wire sends dates and bytes as text (JSON);
            see :func:`compile_check`.
        :raises RPCError: -32602 when the count, a name or a type does not match.
        """
        checks = self._text_checks if text_scalars else self._checks
        # A list (what protocols hand over) is told apart without Mapping's ABC check.
        if not isinstance(params, (list, tuple)) and isinstance(params, Mapping):
            return [], self._bind_named(method, params, checks)
        count = len(params)
        positional = len(self.names)
        if count < self.required or (count > positional and not self.has_var_positional):
            raise RPCError(
                INVALID_PARAMS,
                f"{method}{self.display}: expected {self._arity()} parameters, got {count}",
            )
        args = list(params)
        if checks is None:
            return args, {}
        for index, value in enumerate(args):
            check = checks[min(index, positional)]
            if check is None:
                continue
            ok, converted = check(value)
            if not ok:
                if index < positional:
                    name, annotation = self.names[index], self.annotations[index]
                else:
                    name, annotation = "*args", self.var_positional
                raise self._type_error(method, name, annotation, value)
            args[index] = converted
        return args, {}

    def _bind_named(
        self, method: str, params: Mapping[str, Any], checks: tuple[Check | None, ...] | None
    ) -> dict[str, Any]:
        unknown = sorted(str(name) for name in params if name not in self.names)
        if unknown:
            raise RPCError(
                INVALID_PARAMS, f"{method}{self.display}: no parameter named {unknown[0]!r}"
            )
        missing = [name for name in self.names[: self.required] if name not in params]
        if missing:
            raise RPCError(
                INVALID_PARAMS, f"{method}{self.display}: parameter {missing[0]!r} is missing"
            )
        kwargs = dict(params)
        if checks is None:
            return kwargs
        for index, name in enumerate(self.names):
            check = checks[index]
            if check is None or name not in kwargs:
                continue
            ok, converted = check(kwargs[name])
            if not ok:
                raise self._type_error(method, name, self.annotations[index], kwargs[name])
            kwargs[name] = converted
        return kwargs

    def _type_error(self, method: str, name: str, annotation: Any, value: Any) -> RPCError:
        return RPCError(
            INVALID_PARAMS,
            f"{method}{self.display}: parameter {name!r} expects "
            f"{type_name(annotation)}, got {_describe(value)}",
        )

    def _arity(self) -> str:
        if self.has_var_positional:
            return f"at least {self.required}"
        if self.required == len(self.names):
            return str(self.required)
        return f"{self.required} to {len(self.names)}"

    def signatures(self, auth_params: Sequence[str] = ()) -> list[list[str]]:
        """Signatures as ``system.methodSignature`` gives them: ``[return type,
        param types...]`` for each number of parameters the function takes."""
        returns = type_name(self.return_annotation)
        params = [type_name(a) for a in self.annotations]
        prefix = [_AUTH_PARAM_TYPES.get(name, "string") for name in auth_params]
        return [
            [returns, *prefix, *params[:arity]]
            for arity in range(self.required, len(params) + 1)
        ]


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return _XMLRPC_TYPE_NAMES.get(type(value), type(value).__name__)


class _Unquoted(str):
    """An annotation left as a string, shown without quotes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _shown(annotation: Any) -> Any:
    """An annotation as the signature should show it (``int``, not ``'int'``)."""
    return _Unquoted(annotation) if isinstance(annotation, str) else annotation


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Resolved type hints; one unresolvable annotation does not spoil the others."""
    try:
        return typing.get_type_hints(func)
    except Exception:  # noqa: S110 - fall back to one annotation at a time
        pass
    hints: dict[str, Any] = {}
    raw = getattr(inspect.unwrap(func), "__annotations__", {}) or {}
    for name, annotation in raw.items():
        try:
            hints[name] = typing.get_type_hints(
                _Annotated(annotation), getattr(inspect.unwrap(func), "__globals__", None)
            )["value"]
        except Exception:  # left as written: accepted unchecked
            hints[name] = annotation
    return hints


class _Annotated:
    """A stand-in object with one annotation, for :func:`typing.get_type_hints`."""

    def __init__(self, annotation: Any) -> None:
        self.__annotations__ = {"value": annotation}


def build_checker(func: Callable[..., Any], *, skip_first: bool = False) -> ParamChecker:
    """Read ``func``'s signature once, for fast checks at call time.

    :param skip_first: leave out the first parameter (the API user that
        ``@rpc.auth`` passes in).
    :raises TypeError: if the function takes keyword-only parameters without
        defaults (XML-RPC passes parameters by position only).
    """
    signature = inspect.signature(func)
    hints = _type_hints(func)
    parameters = list(signature.parameters.values())
    if skip_first:
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(
                f"{func.__qualname__}: an authenticated function takes the API user "
                "as its first positional parameter"
            )
        parameters = parameters[1:]
    names: list[str] = []
    annotations: list[Any] = []
    required = 0
    var_positional: Any = inspect.Parameter.empty
    has_var = False
    for p in parameters:
        annotation = hints.get(p.name, p.annotation)
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
            annotations.append(annotation)
            if p.default is inspect.Parameter.empty:
                required = len(names)
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            has_var = True
            var_positional = annotation
        elif p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty:
            raise TypeError(
                f"{func.__qualname__}: keyword-only parameter {p.name!r} has no default; "
                "calls may pass parameters by position only"
            )
    shown = signature.replace(
        parameters=[
            p.replace(annotation=_shown(hints.get(p.name, p.annotation))) for p in parameters
        ],
        return_annotation=_shown(hints.get("return", signature.return_annotation)),
    )
    return ParamChecker(
        display=str(shown),
        names=tuple(names),
        annotations=tuple(annotations),
        required=required,
        var_positional=var_positional,
        has_var_positional=has_var,
        return_annotation=hints.get("return", signature.return_annotation),
    )
