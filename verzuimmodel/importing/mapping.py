"""Import mappings: how a municipality's own export maps onto the five tables of a cohort.

A mapping is a small TOML file (``data/README.md``, section "Importing a municipality's own export";
the Dutch template is ``verzuimmodel/mappings/nl_template.toml``), read here into frozen dataclasses.
Everything that can be checked without the export is checked when the mapping is read (unknown keys,
tables, columns, codes and date formats; required columns not mapped); what depends on the data is
checked when it is applied (:mod:`verzuimmodel.importing.convert`). Every problem is a
:class:`MappingError` naming the mapping key, and for data problems the row of the user's file.
"""

from __future__ import annotations

import codecs
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..i18n import InputError, LocalizedFileNotFoundError, Message
from ..schema import CODE_LISTS, TABLES
from .errors import MappingError, normalise

__all__ = ["BOOLEAN", "TEMPLATES", "ColumnMap", "DateFormat", "Format", "ImportMapping", "MappingError",
           "TableMap", "normalise", "template_text"]

TEMPLATES: tuple[str, ...] = ("nl_template",)
"""Mappings shipped with the package (``verzuimmodel/mappings/<name>.toml``), usable with ``extends``."""

BOOLEAN = "boolean"
"""Name of the code list of true/false columns under ``[codes]``."""

REQUIRED_TABLES = ("schools", "pupils")
SEPARATORS = ("auto", ";", ",", "\t", "|")
DECIMALS = (",", ".")
THOUSANDS = ("", ".", ",", " ")
ENCODINGS_AUTO = ("utf-8-sig", "cp1252", "latin-1")
"""The encodings ``encoding = "auto"`` tries, in this order (UTF-8 with or without byte-order mark first)."""

_FORMAT_DEFAULTS: dict[str, Any] = {"encoding": "auto", "separator": "auto", "decimal": ".", "thousands": "",
                                    "date_formats": ("jjjj-mm-dd", "excel"), "two_digit_year_from": 1990,
                                    "missing": ("",)}
_TOP_KEYS = {"extends", "format", "codes", "tables"}
_TABLE_KEYS = {"file", "sheet", "drop", "columns", "skip", *_FORMAT_DEFAULTS}
_COLUMN_KEYS = {"column", "value", "date_formats", "codes"}


# -- date formats ----------------------------------------------------------------------------------

_DATE_TOKENS = re.compile(r"jjjj|yyyy|jj|yy|dd|d|mm|m|[^a-zA-Z]+|[a-zA-Z]+")
_TIME = r"(?:[ T](?P<t>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?"
_DATE_ALIASES = {"iso": "jjjj-mm-dd"}


@dataclass(frozen=True)
class DateFormat:
    """A date format: ``dd-mm-jjjj``, ``d-m-jj``, ``jjjj-mm-dd`` (alias ``iso``), ... or ``excel``.

    ``d``/``dd`` and ``m``/``mm`` take one or two digits, ``jjjj`` (``yyyy``) four and ``jj`` (``yy``)
    two; other characters stand for themselves. A time of day after the date is allowed and dropped.
    ``excel`` reads Excel serial day numbers (1900 date system).
    """

    spec: str
    regex: str | None = None
    two_digit_year: bool = False

    @property
    def excel(self) -> bool:
        return self.regex is None

    @classmethod
    def parse(cls, spec: Any, key: str, source: str | None = None) -> "DateFormat":
        bad = MappingError(key, Message("mapping.unknown_date_format", spec=repr(spec)), source=source,
                           hint=Message("mapping.hint_date_formats"))
        if not isinstance(spec, str):
            raise bad
        text = _DATE_ALIASES.get(spec.strip().lower(), spec.strip().lower())
        if text == "excel":
            return cls("excel")
        parts, seen = [], []
        for token in _DATE_TOKENS.findall(text):
            if token in ("d", "dd"):
                parts.append(r"(?P<d>\d{1,2})"), seen.append("d")
            elif token in ("m", "mm"):
                parts.append(r"(?P<m>\d{1,2})"), seen.append("m")
            elif token in ("jjjj", "yyyy"):
                parts.append(r"(?P<y>\d{4})"), seen.append("y")
            elif token in ("jj", "yy"):
                parts.append(r"(?P<y>\d{2})"), seen.append("yy")
            elif token.isalpha():
                raise bad
            else:
                parts.append(re.escape(token))
        if sorted(s[0] for s in seen) != ["d", "m", "y"]:
            raise bad
        return cls(spec.strip(), "^" + "".join(parts) + _TIME + "$", "yy" in seen)


# -- the mapping ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """How the files are written: encoding, separator, decimal and thousands marks, dates, missing text.

    ``keys`` says for each field which mapping key set it (``format.encoding`` or ``tables.pupils.encoding``),
    so that an error names the key to change.
    """

    encoding: str
    separator: str
    decimal: str
    thousands: str
    date_formats: tuple[str, ...]
    two_digit_year_from: int
    missing: tuple[str, ...]
    keys: Mapping[str, str]

    def key(self, field: str) -> str:
        return self.keys.get(field, f"format.{field}")


@dataclass(frozen=True)
class ColumnMap:
    """Where a column of the package comes from: a column of the user's file (``source``) or a constant."""

    name: str
    key: str
    source: str | None = None
    value: Any = None
    date_formats: tuple[str, ...] | None = None
    codes: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TableMap:
    """One table: its file (in a folder export) and sheet (in a workbook), columns, dropped columns, format."""

    name: str
    file: str | None
    sheet: str | None
    columns: tuple[ColumnMap, ...]
    drop: tuple[str, ...]
    format: Format
    skip: bool = False

    @property
    def key(self) -> str:
        return f"tables.{self.name}"


@dataclass(frozen=True)
class ImportMapping:
    """A validated import mapping (see the module docstring and ``data/README.md``).

    Read one with :meth:`load` (a TOML file), :meth:`template` (a shipped template), :meth:`from_toml`
    or :meth:`from_dict`.
    """

    tables: Mapping[str, TableMap]
    codes: Mapping[str, Mapping[str, Any]]
    format: Format
    name: str = "mapping"

    @classmethod
    def load(cls, path: str | Path) -> "ImportMapping":
        """Read a mapping file (TOML)."""
        path = Path(path)
        if not path.is_file():
            raise LocalizedFileNotFoundError(Message("mapping.file_not_found", path=str(path)))
        return cls.from_toml(path.read_text(encoding="utf-8-sig"), name=path.name)

    @classmethod
    def template(cls, name: str = "nl_template") -> "ImportMapping":
        """A mapping shipped with the package (:data:`TEMPLATES`)."""
        return cls.from_toml(template_text(name), name=f"{name}.toml")

    @classmethod
    def from_toml(cls, text: str, name: str = "mapping") -> "ImportMapping":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise MappingError("(syntax)", Message("mapping.invalid_toml", error=str(e)), source=name) from None
        return cls.from_dict(data, name=name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "mapping") -> "ImportMapping":
        """Build and check a mapping from the parsed TOML (``extends`` is resolved first)."""
        return _build(_resolve(dict(data), name), name)

    def labels(self, codes: str, column: ColumnMap | None = None) -> dict[str, Any]:
        """Normalised label -> code for code list ``codes`` (or :data:`BOOLEAN`): the codes themselves,
        then ``[codes.<codes>]``, then the column's own ``codes``."""
        found = {"true": True, "false": False} if codes == BOOLEAN else {normalise(c): c for c in CODE_LISTS[codes]}
        found.update({normalise(k): v for k, v in self.codes.get(codes, {}).items()})
        if column is not None and column.codes:
            found.update({normalise(k): v for k, v in column.codes.items()})
        return found


def template_text(name: str = "nl_template") -> str:
    """The text of a shipped mapping template (:data:`TEMPLATES`)."""
    if name not in TEMPLATES:
        raise InputError(Message("mapping.unknown_template_name", name=repr(name), choices=", ".join(TEMPLATES)))
    return resources.files("verzuimmodel").joinpath("mappings", f"{name}.toml").read_text(encoding="utf-8")


def _resolve(data: dict, name: str, depth: int = 0) -> dict:
    """``data`` merged over the template it ``extends`` (tables merged key by key; lists replaced)."""
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or base not in TEMPLATES or depth > 3:
        raise MappingError("extends", Message("mapping.unknown_template", name=repr(base)), source=name,
                           hint=_one_of(repr(t) for t in TEMPLATES))
    return _merge(_resolve(tomllib.loads(template_text(base)), f"{base}.toml", depth + 1), data)


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _one_of(choices) -> Message:
    return Message("mapping.hint_one_of", choices=", ".join(choices))


def _unknown(given: Mapping, allowed, prefix: str, name: str, what: Message) -> None:
    """A MappingError for the first key of ``given`` not in ``allowed``; ``what`` says what it is
    (``mapping.unknown.*``)."""
    for k in given:
        if k not in allowed:
            raise MappingError(f"{prefix}{k}", what, source=name, hint=_one_of(sorted(map(str, allowed))))


def _got(value: Any) -> Message:
    return Message("mapping.got", got=repr(value))


def _table_of(value: Any, key: str, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise MappingError(key, Message("mapping.expected_table", key=key, got=repr(value)), source=name)
    return value


def _format(raw: Mapping, parent: Format | None, prefix: str, name: str) -> Format:
    """The format keys of ``raw`` (``[format]`` or a ``[tables.X]``) over ``parent`` (or the defaults)."""
    values = {f: getattr(parent, f) for f in _FORMAT_DEFAULTS} if parent else dict(_FORMAT_DEFAULTS)
    keys = dict(parent.keys) if parent else {}
    for field in _FORMAT_DEFAULTS:
        if field not in raw:
            continue
        key, v = f"{prefix}{field}", raw[field]
        keys[field] = key
        if field == "encoding":
            v = _encoding(v, key, name)
        elif field in ("separator", "decimal", "thousands"):
            allowed = {"separator": SEPARATORS, "decimal": DECIMALS, "thousands": THOUSANDS}[field]
            if v not in allowed:
                raise MappingError(key, _got(v), source=name, hint=_one_of(repr(a) for a in allowed))
        elif field == "date_formats":
            v = (v,) if isinstance(v, str) else v
            if not isinstance(v, (list, tuple)) or not v:
                raise MappingError(key, Message("mapping.expected_date_formats", got=repr(v)), source=name)
            v = tuple(DateFormat.parse(s, key, name).spec for s in v)
        elif field == "two_digit_year_from":
            if not isinstance(v, int) or isinstance(v, bool) or not 1900 <= v <= 2100:
                raise MappingError(key, _got(v), source=name, hint=Message("mapping.hint_year"))
        elif field == "missing":
            if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
                raise MappingError(key, Message("mapping.expected_texts", got=repr(v)), source=name)
            v = tuple(v)
        values[field] = v
    if values["thousands"] and values["thousands"] == values["decimal"]:
        raise MappingError(keys.get("thousands", f"{prefix}thousands"), Message("mapping.thousands_is_decimal"),
                           source=name)
    return Format(**values, keys=MappingProxyType(keys))


def _encoding(v: Any, key: str, name: str) -> str:
    if not isinstance(v, str):
        raise MappingError(key, _got(v), source=name, hint=Message("mapping.hint_encoding"))
    if v.lower() == "auto":
        return "auto"
    try:
        codec = codecs.lookup(v).name
    except LookupError:
        raise MappingError(key, Message("mapping.unknown_encoding", encoding=repr(v)), source=name,
                           hint=Message("mapping.hint_encoding")) from None
    return "utf-8-sig" if codec == "utf-8" else codec


def _codes(raw: Any, key: str, codes: str, name: str) -> dict[str, Any]:
    """A ``label = code`` table for code list ``codes`` (or :data:`BOOLEAN`), checked."""
    table = _table_of(raw, key, name)
    seen: dict[str, Any] = {}
    for label, code in table.items():
        k = f"{key}.{label}" if re.fullmatch(r"[A-Za-z0-9_-]+", label) else f'{key}."{label}"'
        if codes == BOOLEAN:
            if not isinstance(code, bool):
                raise MappingError(k, _got(code), source=name, hint=Message("mapping.hint_true_false"))
        elif code not in CODE_LISTS[codes]:
            raise MappingError(k, Message("mapping.not_a_code", code=repr(code), codes=codes), source=name,
                               hint=_one_of(repr(c) for c in CODE_LISTS[codes]))
        norm = normalise(label)
        if norm in seen and seen[norm] != code:
            raise MappingError(k, Message("mapping.label_twice", label=repr(label), first=repr(seen[norm]),
                                          second=repr(code)), source=name)
        seen[norm] = code
    return dict(table)


def _column(table: str, column: str, raw: Any, fmt: Format, name: str) -> ColumnMap:
    key = f"tables.{table}.columns.{column}"
    declared = TABLES[table].column(column)
    if isinstance(raw, str):
        raw = {"column": raw}
    raw = _table_of(raw, key, name)
    _unknown(raw, _COLUMN_KEYS, f"{key}.", name, Message("mapping.unknown.column_key"))
    if ("column" in raw) == ("value" in raw):
        raise MappingError(key, Message("mapping.column_or_value"), source=name)
    source = raw.get("column")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise MappingError(key, Message("mapping.expected_column_name", got=repr(source)), source=name)
    formats = None
    if "date_formats" in raw:
        if declared.kind != "date":
            raise MappingError(f"{key}.date_formats", Message("mapping.not_a_date_column", column=column),
                               source=name)
        formats = _format({"date_formats": raw["date_formats"]}, fmt, f"{key}.", name).date_formats
    codes = None
    if "codes" in raw:
        if declared.kind not in ("code", "bool"):
            raise MappingError(f"{key}.codes", Message("mapping.not_a_code_column", column=column), source=name)
        codes = MappingProxyType(_codes(raw["codes"], f"{key}.codes", declared.codes or BOOLEAN, name))
    return ColumnMap(column, key, source.strip() if source else None, raw.get("value"), formats, codes)


def _table(table: str, raw: Any, parent: Format, name: str) -> TableMap:
    key = f"tables.{table}"
    raw = _table_of(raw, key, name)
    _unknown(raw, _TABLE_KEYS, f"{key}.", name, Message("mapping.unknown.table_key"))
    fmt = _format(raw, parent, f"{key}.", name)
    for k in ("file", "sheet"):
        if k in raw and (not isinstance(raw[k], str) or not raw[k].strip()):
            raise MappingError(f"{key}.{k}", Message(f"mapping.expected_{k}_name", got=repr(raw[k])), source=name)
    skip = raw.get("skip", False)
    if not isinstance(skip, bool):
        raise MappingError(f"{key}.skip", _got(skip), source=name, hint=Message("mapping.hint_true_false"))
    if skip and table in REQUIRED_TABLES:
        raise MappingError(f"{key}.skip", Message("mapping.table_required", table=table), source=name)
    columns_raw = _table_of(raw.get("columns", {}), f"{key}.columns", name)
    _unknown(columns_raw, TABLES[table].column_names, f"{key}.columns.", name,
             Message("mapping.unknown.column", table=table))
    columns = tuple(_column(table, c, v, fmt, name) for c, v in columns_raw.items() if v is not False)
    drop = raw.get("drop", [])
    if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
        raise MappingError(f"{key}.drop", Message("mapping.expected_column_names", got=repr(drop)), source=name)
    if not skip:
        mapped = {c.name for c in columns}
        for c in TABLES[table].columns:
            if c.required and c.name not in mapped:
                raise MappingError(f"{key}.columns.{c.name}", Message("mapping.required_column"), source=name,
                                   hint=Message("mapping.hint_required_column"))
        sources = {normalise(c.source) for c in columns if c.source}
        for d in drop:
            if normalise(d) in sources:
                raise MappingError(f"{key}.drop", Message("mapping.mapped_and_dropped", column=repr(d)),
                                   source=name)
    return TableMap(table, raw.get("file", "").strip() or None, raw.get("sheet", "").strip() or None, columns,
                    tuple(d.strip() for d in drop), fmt, skip)


def _build(data: dict, name: str) -> ImportMapping:
    _unknown(data, _TOP_KEYS, "", name, Message("mapping.unknown.key"))
    fmt_raw = _table_of(data.get("format", {}), "format", name)
    _unknown(fmt_raw, _FORMAT_DEFAULTS, "format.", name, Message("mapping.unknown.format_key"))
    fmt = _format(fmt_raw, None, "format.", name)
    codes_raw = _table_of(data.get("codes", {}), "codes", name)
    _unknown(codes_raw, [*CODE_LISTS, BOOLEAN], "codes.", name, Message("mapping.unknown.code_list"))
    codes = {c: MappingProxyType(_codes(v, f"codes.{c}", c, name)) for c, v in codes_raw.items()}
    tables_raw = _table_of(data.get("tables", {}), "tables", name)
    _unknown(tables_raw, TABLES, "tables.", name, Message("mapping.unknown.table"))
    for t in REQUIRED_TABLES:
        if t not in tables_raw:
            raise MappingError(f"tables.{t}", Message("mapping.required_table"), source=name)
    tables = {t: _table(t, tables_raw[t], fmt, name) for t in TABLES if t in tables_raw}
    return ImportMapping(MappingProxyType(tables), MappingProxyType(codes), fmt, name)
