"""Scenario <-> nested dicts (TOML): conversion with one-line errors naming the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import fields
from typing import Literal

__all__ = ["to_dict", "build"]


def to_dict(obj) -> dict:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, dict):
            value = {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"scenario key '{where or cls.__name__}': expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"scenario key '{_join(where, unknown[0])}': unknown key; expected one of "
                         f"{', '.join(sorted(known))}")
    kwargs = {k: _convert(hints[k], v, _join(where, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - all fields have defaults
        raise ValueError(f"scenario key '{where}': {e}") from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value, where)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"scenario key '{where}': got {value!r}; expected one of {', '.join(map(str, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"scenario key '{where}': expected a table")
        return {k: _convert(args[1], v, _join(where, k)) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"scenario key '{where}': expected a list of numbers, got {value!r}")
        return tuple(_convert(float, v, where) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"scenario key '{where}': expected a number, got {value!r}")
        return float(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"scenario key '{where}': expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"scenario key '{where}': expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"scenario key '{where}': expected a string, got {value!r}")
        return value
    return value
