"""Frozen dataclasses from plain dicts (YAML), with the field types checked and unknown keys refused.

`from_dict(Cls, d)` converts each value to its field's annotated type: nested dataclasses from
mappings, `tuple[X, ...]` / `tuple[X, Y]` from lists, numbers from numbers or numeric strings
(PyYAML reads `1e-3` as a string), `X | None`; anything else is a ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key that does not fit; the message names the key."""


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {k: _convert(hints[k], v, f"{where}.{k}" if where != "config" else k) for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as e:  # a required key is missing
        raise ConfigError(f"{where}: {e}") from e


def to_dict(config: Any) -> dict:
    """The inverse of from_dict: plain dicts, lists and scalars (yaml.safe_dump-able)."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return plain(config)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is tuple:
        return _tuple(args, value, key)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return types.MappingProxyType(dict(value))  # read-only, as the frozen dataclass around it
    if tp is Any:
        return value
    return _scalar(tp, value, key)


def _tuple(args: tuple, value: Any, key: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], v, key) for v in value)
    if len(value) != len(args):
        raise ConfigError(f"{key} must have {len(args)} values, got {list(value)}")
    return tuple(_convert(a, v, key) for a, v in zip(args, value))


def _scalar(tp: type, value: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp in (int, float) and not isinstance(value, bool):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = None
        if isinstance(number, (int, float)):
            if tp is float:
                return float(number)
            if float(number).is_integer():
                return int(number)
    raise ConfigError(f"{key} must be {tp.__name__}, got {value!r}")
