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
        bad = MappingError(key, f"unknown date format {spec!r}", source=source,
                           hint="use e.g. 'dd-mm-jjjj', 'd-m-jj', 'jjjj-mm-dd' or 'excel'")
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
            raise FileNotFoundError(f"mapping file '{path}' does not exist")
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
            raise MappingError("(syntax)", f"not valid TOML: {e}", source=name) from None
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
        raise ValueError(f"unknown mapping template {name!r}: expected one of {', '.join(TEMPLATES)}")
    return resources.files("verzuimmodel").joinpath("mappings", f"{name}.toml").read_text(encoding="utf-8")


def _resolve(data: dict, name: str, depth: int = 0) -> dict:
    """``data`` merged over the template it ``extends`` (tables merged key by key; lists replaced)."""
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or base not in TEMPLATES or depth > 3:
        raise MappingError("extends", f"unknown template {base!r}", source=name,
                           hint="expected one of " + ", ".join(repr(t) for t in TEMPLATES))
    return _merge(_resolve(tomllib.loads(template_text(base)), f"{base}.toml", depth + 1), data)


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _unknown(given: Mapping, allowed, prefix: str, name: str, what: str) -> None:
    for k in given:
        if k not in allowed:
            raise MappingError(f"{prefix}{k}", f"unknown {what}", source=name,
                               hint="expected one of " + ", ".join(sorted(map(str, allowed))))


def _table_of(value: Any, key: str, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise MappingError(key, f"expected a table ([{key}]), got {value!r}", source=name)
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
                raise MappingError(key, f"got {v!r}", source=name,
                                   hint="expected one of " + ", ".join(repr(a) for a in allowed))
        elif field == "date_formats":
            v = (v,) if isinstance(v, str) else v
            if not isinstance(v, (list, tuple)) or not v:
                raise MappingError(key, f"expected a list of date formats, got {v!r}", source=name)
            v = tuple(DateFormat.parse(s, key, name).spec for s in v)
        elif field == "two_digit_year_from":
            if not isinstance(v, int) or isinstance(v, bool) or not 1900 <= v <= 2100:
                raise MappingError(key, f"got {v!r}", source=name, hint="expected a year from 1900 to 2100")
        elif field == "missing":
            if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
                raise MappingError(key, f"expected a list of texts, got {v!r}", source=name)
            v = tuple(v)
        values[field] = v
    if values["thousands"] and values["thousands"] == values["decimal"]:
        raise MappingError(keys.get("thousands", f"{prefix}thousands"), "the thousands mark equals the decimal mark",
                           source=name)
    return Format(**values, keys=MappingProxyType(keys))


def _encoding(v: Any, key: str, name: str) -> str:
    if not isinstance(v, str):
        raise MappingError(key, f"got {v!r}", source=name, hint="expected 'auto', 'utf-8', 'cp1252' or 'latin-1'")
    if v.lower() == "auto":
        return "auto"
    try:
        codec = codecs.lookup(v).name
    except LookupError:
        raise MappingError(key, f"unknown encoding {v!r}", source=name,
                           hint="expected 'auto', 'utf-8', 'cp1252' or 'latin-1'") from None
    return "utf-8-sig" if codec == "utf-8" else codec


def _codes(raw: Any, key: str, codes: str, name: str) -> dict[str, Any]:
    """A ``label = code`` table for code list ``codes`` (or :data:`BOOLEAN`), checked."""
    table = _table_of(raw, key, name)
    seen: dict[str, Any] = {}
    for label, code in table.items():
        k = f"{key}.{label}" if re.fullmatch(r"[A-Za-z0-9_-]+", label) else f'{key}."{label}"'
        if codes == BOOLEAN:
            if not isinstance(code, bool):
                raise MappingError(k, f"got {code!r}", source=name, hint="expected true or false")
        elif code not in CODE_LISTS[codes]:
            raise MappingError(k, f"{code!r} is not a code of '{codes}'", source=name,
                               hint="expected one of " + ", ".join(repr(c) for c in CODE_LISTS[codes]))
        norm = normalise(label)
        if norm in seen and seen[norm] != code:
            raise MappingError(k, f"label {label!r} is mapped to both {seen[norm]!r} and {code!r} "
                               "(labels are matched without regard to case and blanks)", source=name)
        seen[norm] = code
    return dict(table)


def _column(table: str, column: str, raw: Any, fmt: Format, name: str) -> ColumnMap:
    key = f"tables.{table}.columns.{column}"
    declared = TABLES[table].column(column)
    if isinstance(raw, str):
        raw = {"column": raw}
    raw = _table_of(raw, key, name)
    _unknown(raw, _COLUMN_KEYS, f"{key}.", name, "key of a column")
    if ("column" in raw) == ("value" in raw):
        raise MappingError(key, "give either the export's column name (column = \"...\") or a constant "
                           "(value = ...)", source=name)
    source = raw.get("column")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise MappingError(key, f"expected the name of a column of the export, got {source!r}", source=name)
    formats = None
    if "date_formats" in raw:
        if declared.kind != "date":
            raise MappingError(f"{key}.date_formats", f"'{column}' is not a date column", source=name)
        formats = _format({"date_formats": raw["date_formats"]}, fmt, f"{key}.", name).date_formats
    codes = None
    if "codes" in raw:
        if declared.kind not in ("code", "bool"):
            raise MappingError(f"{key}.codes", f"'{column}' is not a code or true/false column", source=name)
        codes = MappingProxyType(_codes(raw["codes"], f"{key}.codes", declared.codes or BOOLEAN, name))
    return ColumnMap(column, key, source.strip() if source else None, raw.get("value"), formats, codes)


def _table(table: str, raw: Any, parent: Format, name: str) -> TableMap:
    key = f"tables.{table}"
    raw = _table_of(raw, key, name)
    _unknown(raw, _TABLE_KEYS, f"{key}.", name, "key of a table")
    fmt = _format(raw, parent, f"{key}.", name)
    for k in ("file", "sheet"):
        if k in raw and (not isinstance(raw[k], str) or not raw[k].strip()):
            raise MappingError(f"{key}.{k}", f"expected a {k} name, got {raw[k]!r}", source=name)
    skip = raw.get("skip", False)
    if not isinstance(skip, bool):
        raise MappingError(f"{key}.skip", f"got {skip!r}", source=name, hint="expected true or false")
    if skip and table in REQUIRED_TABLES:
        raise MappingError(f"{key}.skip", f"table '{table}' is required", source=name)
    columns_raw = _table_of(raw.get("columns", {}), f"{key}.columns", name)
    _unknown(columns_raw, TABLES[table].column_names, f"{key}.columns.", name, f"column of table '{table}'")
    columns = tuple(_column(table, c, v, fmt, name) for c, v in columns_raw.items() if v is not False)
    drop = raw.get("drop", [])
    if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
        raise MappingError(f"{key}.drop", f"expected a list of column names, got {drop!r}", source=name)
    if not skip:
        mapped = {c.name for c in columns}
        for c in TABLES[table].columns:
            if c.required and c.name not in mapped:
                raise MappingError(f"{key}.columns.{c.name}", "required column not mapped", source=name,
                                   hint="give the name of the export's column, or a constant: { value = ... }")
        sources = {normalise(c.source) for c in columns if c.source}
        for d in drop:
            if normalise(d) in sources:
                raise MappingError(f"{key}.drop", f"column {d!r} is both mapped and dropped", source=name)
    return TableMap(table, raw.get("file", "").strip() or None, raw.get("sheet", "").strip() or None, columns,
                    tuple(d.strip() for d in drop), fmt, skip)


def _build(data: dict, name: str) -> ImportMapping:
    _unknown(data, _TOP_KEYS, "", name, "key")
    fmt_raw = _table_of(data.get("format", {}), "format", name)
    _unknown(fmt_raw, _FORMAT_DEFAULTS, "format.", name, "format key")
    fmt = _format(fmt_raw, None, "format.", name)
    codes_raw = _table_of(data.get("codes", {}), "codes", name)
    _unknown(codes_raw, [*CODE_LISTS, BOOLEAN], "codes.", name, "code list")
    codes = {c: MappingProxyType(_codes(v, f"codes.{c}", c, name)) for c, v in codes_raw.items()}
    tables_raw = _table_of(data.get("tables", {}), "tables", name)
    _unknown(tables_raw, TABLES, "tables.", name, "table")
    for t in REQUIRED_TABLES:
        if t not in tables_raw:
            raise MappingError(f"tables.{t}", "required table not mapped", source=name)
    tables = {t: _table(t, tables_raw[t], fmt, name) for t in TABLES if t in tables_raw}
    return ImportMapping(MappingProxyType(tables), MappingProxyType(codes), fmt, name)
