"""Column data types: parse the CLI/API type syntax into Arrow types and back.

The canonical string of a type is what the catalog stores, so ``long``,
``bigint`` and ``int64`` are the same type and print the same way.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import pyarrow as pa

from arco.core.errors import InvalidArgumentError

_PRIMITIVES: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "large_string": pa.large_string(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "date": pa.date32(),
    "date64": pa.date64(),
    "null": pa.null(),
}
_ALIASES = {
    "tinyint": "int8",
    "smallint": "int16",
    "int": "int32",
    "integer": "int32",
    "long": "int64",
    "bigint": "int64",
    "float": "float32",
    "real": "float32",
    "double": "float64",
    "boolean": "bool",
    "str": "string",
    "text": "string",
    "utf8": "string",
    "varchar": "string",
    "bytes": "binary",
    "date32": "date",
}
_UNITS = ("s", "ms", "us", "ns")
_TOKEN_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|\d+|[<>\[\](),:]|\"[^\"]*\"|`[^`]*`)")
_TZ_RE = re.compile(r"\s*([A-Za-z0-9_+\-/:]+)")


@dataclass
class _Parser:
    text: str
    pos: int = 0

    def error(self, message: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"invalid type {self.text!r}: {message} at position {self.pos}")

    def peek(self) -> str | None:
        match = _TOKEN_RE.match(self.text, self.pos)
        return match.group(1) if match else None

    def take(self) -> str:
        match = _TOKEN_RE.match(self.text, self.pos)
        if not match:
            raise self.error("unexpected end or character")
        self.pos = match.end()
        return match.group(1)

    def expect(self, token: str) -> None:
        got = self.take() if self.peek() is not None else None
        if got != token:
            raise self.error(f"expected {token!r}, got {got!r}")

    def at_end(self) -> bool:
        return self.text[self.pos :].strip() == ""

    def parse_type(self) -> pa.DataType:
        word = self.take().lower()
        word = _ALIASES.get(word, word)
        if word in _PRIMITIVES:
            return _PRIMITIVES[word]
        if word in ("timestamp", "timestamptz"):
            return self._timestamp(default_tz="UTC" if word == "timestamptz" else None)
        if word in ("time", "time32", "time64"):
            return self._time(word)
        if word in ("decimal", "numeric"):
            return self._decimal()
        if word in ("list", "large_list", "array"):
            self.expect("<")
            inner = self.parse_type()
            self.expect(">")
            return pa.large_list(inner) if word == "large_list" else pa.list_(inner)
        if word == "map":
            self.expect("<")
            key = self.parse_type()
            self.expect(",")
            value = self.parse_type()
            self.expect(">")
            return pa.map_(key, value)
        if word == "struct":
            return self._struct()
        raise self.error(f"unknown type name {word!r}")

    def _timestamp(self, default_tz: str | None) -> pa.DataType:
        unit, tz = "us", default_tz
        if self.peek() == "[":
            self.take()
            unit = self.take().lower()
            if unit not in _UNITS:
                raise self.error(f"timestamp unit must be one of {', '.join(_UNITS)}")
            if self.peek() == ",":
                self.take()
                match = _TZ_RE.match(self.text, self.pos)
                if not match:
                    raise self.error("expected a time zone")
                tz = match.group(1)
                if tz.lower().startswith("tz="):
                    tz = tz[3:]
                self.pos = match.end()
                _check_tz(tz)
            self.expect("]")
        return pa.timestamp(unit, tz=tz)

    def _time(self, word: str) -> pa.DataType:
        unit = "us" if word != "time32" else "ms"
        if self.peek() == "[":
            self.take()
            unit = self.take().lower()
            self.expect("]")
        if unit in ("s", "ms"):
            return pa.time32(unit)
        if unit in ("us", "ns"):
            return pa.time64(unit)
        raise self.error("time unit must be s, ms, us or ns")

    def _decimal(self) -> pa.DataType:
        precision, scale = 38, 0
        if self.peek() == "(":
            self.take()
            precision = self._int("precision")
            if self.peek() == ",":
                self.take()
                scale = self._int("scale")
            self.expect(")")
        if not 1 <= precision <= 76:
            raise self.error("decimal precision must be between 1 and 76")
        if not 0 <= scale <= precision:
            raise self.error("decimal scale must be between 0 and the precision")
        return (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )

    def _int(self, what: str) -> int:
        token = self.take()
        if not token.isdigit():
            raise self.error(f"{what} must be an integer")
        return int(token)

    def _struct(self) -> pa.DataType:
        self.expect("<")
        fields: list[pa.Field] = []
        names: set[str] = set()
        while True:
            name = self.take().strip('"`')
            if not name or name in "<>[](),:":
                raise self.error("expected a field name")
            if name in names:
                raise self.error(f"duplicate struct field {name!r}")
            names.add(name)
            self.expect(":")
            fields.append(pa.field(name, self.parse_type()))
            token = self.take()
            if token == ">":
                break
            if token != ",":
                raise self.error("expected ',' or '>' in struct")
        return pa.struct(fields)


def _check_tz(tz: str) -> None:
    if tz.upper() == "UTC" or re.fullmatch(r"[+-]\d{2}:\d{2}", tz):
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgumentError(f"unknown time zone {tz!r}") from exc


def parse_type(text: str) -> pa.DataType:
    """Parse a type string such as ``decimal(10,2)`` or ``list<struct<a: int64>>``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError("type must be a non-empty string")
    if len(text) > 4096:
        raise InvalidArgumentError("type string is longer than 4096 characters")
    parser = _Parser(text)
    try:
        result = parser.parse_type()
    except RecursionError as exc:
        raise InvalidArgumentError(f"invalid type {text[:40]!r}...: nested too deeply") from exc
    if not parser.at_end():
        raise parser.error("unexpected trailing text")
    return result


def type_to_string(dtype: pa.DataType) -> str:
    """The canonical string of an Arrow type (inverse of :func:`parse_type`)."""
    for name, prim in _PRIMITIVES.items():
        if dtype == prim:
            return name
    if pa.types.is_timestamp(dtype):
        return f"timestamp[{dtype.unit}, {dtype.tz}]" if dtype.tz else f"timestamp[{dtype.unit}]"
    if pa.types.is_time(dtype):
        return f"time[{dtype.unit}]"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_large_list(dtype):
        return f"large_list<{type_to_string(dtype.value_type)}>"
    if pa.types.is_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return f"list<{type_to_string(dtype.value_type)}>"
    if pa.types.is_map(dtype):
        return f"map<{type_to_string(dtype.key_type)}, {type_to_string(dtype.item_type)}>"
    if pa.types.is_struct(dtype):
        inner = ", ".join(
            f"{dtype.field(i).name}: {type_to_string(dtype.field(i).type)}"
            for i in range(dtype.num_fields)
        )
        return f"struct<{inner}>"
    if pa.types.is_dictionary(dtype):
        return type_to_string(dtype.value_type)
    if dtype == pa.string_view():
        return "string"
    raise InvalidArgumentError(f"Arrow type {dtype} has no catalog type name")


@functools.lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    return type_to_string(parse_type(text))


def normalize_type(text: str) -> str:
    """Parse and re-print a type string in canonical form (cached: types repeat a lot)."""
    if not isinstance(text, str):
        raise InvalidArgumentError("type must be a non-empty string")
    return _normalize_cached(text)
