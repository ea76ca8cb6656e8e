"""SPEC strings: ``name[key=value,...]`` for tasks and methods, and their canonical labels."""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, Literal

from vibench.declarations import config_items


class SpecError(ValueError):
    """A SPEC, name or parameter the user gave is not valid; the message lists valid ones."""


_SPEC = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\[(.*)\])?\s*$")


def parse_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"advi[family=fullrank,steps=5000]"`` -> ``("advi", {"family": "fullrank", "steps": "5000"})``."""
    match = _SPEC.match(text)
    if not match:
        raise SpecError(f"cannot parse {text!r}; expected NAME or NAME[key=value,...]")
    name, body = match.group(1), match.group(2)
    params: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (body or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SpecError(f"cannot parse {item!r} in {text!r}; expected key=value")
        if key.strip() in params:
            raise SpecError(f"parameter {key.strip()!r} given twice in {text!r}")
        params[key.strip()] = value.strip()
    return name, params


def _convert(raw: str, kind: Any, where: str) -> Any:
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if raw not in choices:
            raise SpecError(f"{where} must be one of {', '.join(map(str, choices))}; got {raw!r}")
        return raw
    if kind is bool:
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise SpecError(f"{where} must be true or false; got {raw!r}")
    if kind in (int, float, str):
        try:
            return kind(raw)
        except ValueError:
            raise SpecError(f"{where} must be {kind.__name__}; got {raw!r}") from None
    raise TypeError(f"{where}: unsupported parameter type {kind!r}")


def make_config(cls: type, params: dict[str, str], owner: str) -> Any:
    """Build the frozen dataclass ``cls`` from string ``params``, checking names and types."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise SpecError(
            f"unknown parameter {unknown[0]!r} for {owner}; valid: {', '.join(fields) or '(none)'}"
        )
    values = {k: _convert(v, hints[k], f"{owner} parameter {k}") for k, v in params.items()}
    return cls(**values)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_label(name: str, config: Any) -> str:
    """``name[k=v,...]`` listing only non-default values, in declaration order."""
    defaults = config_items(type(config)())
    changed = [f"{k}={_format(v)}" for k, v in config_items(config).items() if v != defaults[k]]
    return f"{name}[{','.join(changed)}]" if changed else name
