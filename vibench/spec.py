"""SPEC strings: ``name[key=value,...]`` for tasks and methods, their checked values and
canonical labels, and the parameter table the command line shows (all without JAX).

Every field of a task's ``Params`` or a method's ``Config`` is checked when a SPEC is
parsed, before anything runs: its type (``int``, ``float``, ``bool``, ``str`` or a
``Literal`` of choices), and, for numbers, the range declared next to the field::

    steps: Annotated[int, Range(1, 10**7)] = 2000
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.02

Integers are ASCII digits with an optional sign (``int()`` alone would accept
full-width digits and underscores); numbers are ASCII decimals and must be finite.
Constraints between fields are a ``check(self) -> None`` method on the class that
raises ``ValueError`` (its message names the fields); :func:`make_config` calls it, so
they too fail at parse time. Empty brackets (``advi[]``, ``advi[,]``) and empty items
(``advi[steps=5,]``) are errors: the defaults are written ``advi``.

Field descriptions come from the class docstring's ``name: text;`` convention (several
names may share one text: ``steps, lr: as in ADVI;``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, Literal

from vibench.declarations import config_items
from vibench.text import quoted

SHOWN = 40
"""Most characters of a user-given value quoted in a message."""


class SpecError(ValueError):
    """A SPEC, name or parameter the user gave is not valid; the message lists valid ones."""


class BudgetTooSmall(ValueError):
    """A method's ``budget`` cannot fit one useful run in the budget; ``minimum`` is the
    smallest budget that works for it, ``why`` the method's cost in words."""

    def __init__(self, minimum: int, why: str, got: int) -> None:
        self.minimum, self.why, self.got = minimum, why, got
        super().__init__(f"needs a budget of at least {minimum} gradient evaluations ({why}); got {got}")


def _number(value: float) -> str:
    """``10**7`` as ``10^7``, other values as Python writes them."""
    if value != 0 and float(value).is_integer() and abs(value) >= 10**4:
        exponent = round(math.log10(abs(value)))
        if 10**exponent == abs(value):
            return f"{'-' if value < 0 else ''}10^{exponent}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Range:
    """The valid values of a number: ``low <= x <= high`` (``None``: unbounded on that
    side; ``low_open`` / ``high_open`` make a bound strict)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def interval(self, integer: bool) -> str:
        """``"1 .. 10^7"`` (integers), ``"(0, 1)"``, ``">= 1"``, ``"> 0"``; ``""`` if unbounded."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            if integer:
                return f"{_number(low)} .. {_number(high)}"
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{left}{_number(low)}, {_number(high)}{right}"
        if low is not None:
            return f"{'>' if self.low_open else '>='} {_number(low)}"
        if high is not None:
            return f"{'<' if self.high_open else '<='} {_number(high)}"
        return ""

    def inequality(self, name: str) -> str:
        """``"1 <= steps <= 10^7"``, ``"0 < lr <= 100"``, ``"twist >= 0"``."""
        low = f"{_number(self.low)} {'<' if self.low_open else '<='} " if self.low is not None else ""
        high = f" {'<' if self.high_open else '<='} {_number(self.high)}" if self.high is not None else ""
        if low and not high:
            return f"{name} {'>' if self.low_open else '>='} {_number(self.low)}"
        return f"{low}{name}{high}"


@dataclass(frozen=True)
class Parameter:
    """One field of a ``Params`` or ``Config`` class, as text for ``vibench list``/``show``."""

    name: str
    type: str
    default: str
    valid: str
    doc: str


@dataclass(frozen=True)
class _Field:
    name: str
    kind: Any  # int, float, bool, str or a Literal
    range: Range | None
    default: Any


def _fields(cls: type) -> list[_Field]:
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        hint, bounds = hints[f.name], None
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            bounds = next((e for e in extras if isinstance(e, Range)), None)
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
        out.append(_Field(f.name, hint, bounds, default))
    return out


def field_range(cls: type, name: str) -> Range | None:
    """The :class:`Range` declared for field ``name`` of ``cls`` (``None`` if none)."""
    return next(f.range for f in _fields(cls) if f.name == name)


_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_LONGEST = 400  # characters of a number; int() refuses over 4300 digits, float() gives inf
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _type_text(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + "|".join(map(str, typing.get_args(kind)))
    return {int: "int", float: "float", bool: "bool", str: "str"}[kind]


def _valid_text(field: _Field) -> str:
    kind = field.kind
    if typing.get_origin(kind) is Literal:
        return "|".join(map(str, typing.get_args(kind)))
    if kind is bool:
        return "true|false"
    if kind is int:
        return (field.range and field.range.interval(True)) or "any integer"
    if kind is float:
        return (field.range and field.range.interval(False)) or "any finite number"
    return "any text"


def _convert(raw: str, field: _Field, owner: str) -> Any:
    where = f"{owner} parameter {field.name}"
    kind = field.kind
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if raw not in choices:
            raise SpecError(f"{where} must be one of {', '.join(map(str, choices))}; got {quoted(raw, SHOWN)}")
        return raw
    if kind is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SpecError(f"{where} must be true or false; got {quoted(raw, SHOWN)}")
    if kind is str:
        return raw
    if kind not in (int, float):
        raise TypeError(f"{where}: unsupported parameter type {kind!r}")
    integer = kind is int
    syntax = _INT if integer else _FLOAT
    value = kind(raw) if len(raw) <= _LONGEST and syntax.fullmatch(raw) else None
    if value is None or not math.isfinite(value) or (field.range and not field.range.contains(value)):
        noun = "an integer" if integer else "a finite number"
        bounds = f", {field.range.inequality(field.name)}" if field.range else ""
        raise SpecError(f"{where} must be {noun}{bounds}; got {quoted(raw, SHOWN)}")
    return value


_SPEC = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\[(.*)\])?\s*$", re.DOTALL)


def parse_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"advi[family=fullrank,steps=5000]"`` -> ``("advi", {"family": "fullrank", "steps": "5000"})``.

    ``advi`` alone means the defaults; empty brackets and empty items are errors."""
    match = _SPEC.match(text)
    if not match:
        raise SpecError(f"cannot parse {quoted(text, SHOWN)}; expected NAME or NAME[key=value,...]")
    name, body = match.group(1), match.group(2)
    params: dict[str, str] = {}
    if body is None:
        return name, params
    if not body.strip():
        raise SpecError(f"empty brackets in {quoted(text, SHOWN)}; write {name} for the defaults")
    for item in (part.strip() for part in body.split(",")):
        if not item:
            raise SpecError(f"empty item in {quoted(text, SHOWN)}; expected key=value,...")
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SpecError(f"cannot parse {quoted(item, SHOWN)} in {quoted(text, SHOWN)}; expected key=value")
        if key.strip() in params:
            raise SpecError(f"parameter {quoted(key.strip(), SHOWN)} given twice in {quoted(text, SHOWN)}")
        params[key.strip()] = value.strip()
    return name, params


def make_config(cls: type, params: dict[str, str], owner: str) -> Any:
    """Build the frozen dataclass ``cls`` from string ``params``, checking names, types,
    declared ranges and the class's ``check`` (constraints between fields)."""
    fields = {f.name: f for f in _fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise SpecError(
            f"unknown parameter {quoted(unknown[0], SHOWN)} for {owner}; valid: {', '.join(fields) or '(none)'}"
        )
    values = {k: _convert(v, fields[k], owner) for k, v in params.items()}
    config = cls(**values)
    check_config(config, owner)
    return config


def check_config(config: Any, owner: str) -> None:
    """Raise :class:`SpecError` unless every field of ``config`` has its declared type and
    lies in its declared range, and the class's ``check`` passes (e.g. for a config a
    method's ``budget`` made)."""
    for field in _fields(type(config)):
        value = getattr(config, field.name)
        kind = field.kind
        if typing.get_origin(kind) is Literal:
            ok = value in typing.get_args(kind)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if ok and kind in (int, float) and field.range is not None:
            ok = field.range.contains(value)
        if not ok:
            _convert(_format(value), field, owner)  # raises with the one-line message
            raise SpecError(f"{owner} parameter {field.name} has the wrong type; got {quoted(repr(value), SHOWN)}")
    check = getattr(config, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as err:
            raise SpecError(f"{owner}: {err}") from None


def parameters(cls: type) -> list[Parameter]:
    """The fields of a ``Params`` or ``Config`` class as text: name, type, default, the
    valid values and the description from the class docstring."""
    docs = field_docs(cls)
    return [
        Parameter(f.name, _type_text(f.kind), _format(f.default), _valid_text(f), docs.get(f.name, ""))
        for f in _fields(cls)
    ]


_NAMES = re.compile(r"\s*([A-Za-z_]\w*(?:\s*(?:,|/|and)\s*[A-Za-z_]\w*)*)\s*:\s*(.*)", re.DOTALL | re.ASCII)


def _segments(text: str) -> list[str]:
    """``text`` split at the semicolons outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ";" and depth <= 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def field_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the docstring's ``name: text;`` segments."""
    names = {f.name for f in dataclasses.fields(cls)}
    text = " ".join((cls.__doc__ or "").split())
    docs: dict[str, str] = {}
    for segment in _segments(text):
        match = _NAMES.fullmatch(segment)
        if not match:
            continue
        owners = re.split(r"\s*(?:,|/|\band\b)\s*", match.group(1))
        if not set(owners) <= names:
            continue
        for name in owners:
            docs.setdefault(name, match.group(2).strip().rstrip("."))
    return docs


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_label(name: str, config: Any) -> str:
    """``name[k=v,...]`` listing only non-default values, in declaration order."""
    defaults = config_items(type(config)())
    changed = [f"{k}={_format(v)}" for k, v in config_items(config).items() if v != defaults[k]]
    return f"{name}[{','.join(changed)}]" if changed else name
