"""Tables, columns and code lists of a verzuimmodel cohort.

A cohort is five tables (``schools``, ``pupils``, ``absence``, ``episodes``,
``interventions``). This module declares each table once — its columns, their
types and allowed values, its key and the keys it refers to — and the code lists
used in them. Everything else (reading, validation, the simulator, the data
dictionary in ``data/README.md``) reads these declarations.

Code lists
----------
``OUTCOMES``
    How a long-term absence episode ends (the competing outcomes).
``EPISODE_TYPES``
    Kinds of long-term absence (LRV, AV, 5a).
``INTERVENTION_TYPES``
    In-episode interventions.
``ABSENCE_TYPES``
    The absence measures recorded per pupil per school year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pandas as pd

from .i18n import Message, get_language

if TYPE_CHECKING:  # at run time they are looked up on first use (__getattr__ below)
    from .validation import validate_cohort, validate_table

__all__ = [
    "Code",
    "Column",
    "Table",
    "TABLES",
    "OUTCOMES",
    "RETURN_OUTCOMES",
    "EPISODE_TYPES",
    "INTERVENTION_TYPES",
    "ABSENCE_TYPES",
    "LEVELS",
    "SCHOOL_TYPES",
    "VO_TRACKS",
    "SEXES",
    "CODE_LISTS",
    "MISSING_TEXT",
    "FIRST_DATE",
    "LAST_DATE",
    "FileSource",
    "SchemaError",
    "empty_table",
    "validate_table",
    "validate_cohort",
]


@dataclass(frozen=True)
class Code:
    """One value of a code list, with its Dutch and English label."""

    code: str
    label_nl: str
    label_en: str
    description: str = ""


def _codes(*codes: Code) -> dict[str, Code]:
    return {c.code: c for c in codes}


OUTCOMES = _codes(
    Code("own_school", "terug naar eigen school", "back to own school",
         "The pupil attends the school where the episode began again."),
    Code("other_school", "andere school of dagbesteding", "other school or day programme",
         "The pupil moves to another school or an alternative day programme (dagbesteding)."),
    Code("work", "werk", "work", "The pupil (16+) starts work; qualification duty met by work-study."),
    Code("specialist_care", "specialistische zorg", "specialist care",
         "The pupil enters specialist (mental) health care or a residential setting."),
    Code("exemption", "vrijstelling", "exemption",
         "The pupil receives an exemption (e.g. art. 5a Leerplichtwet)."),
    Code("censored", "loopt nog", "still running",
         "No outcome observed: the episode was running at the end of follow-up or the pupil moved away."),
)
"""How an episode ends. ``censored`` means no outcome was observed."""

RETURN_OUTCOMES = ("own_school", "other_school")
"""Outcomes that count as a return to school (own school, other school or day programme)."""

EPISODE_TYPES = _codes(
    Code("LRV", "langdurig relatief verzuim", "long-term relative absence",
         "Enrolled, unexcused absence longer than 4 weeks."),
    Code("AV", "absoluut verzuim", "absolute absence", "Of compulsory school age and not enrolled anywhere."),
    Code("5a", "vrijstelling 5a", "exemption (art. 5a)",
         "Exempt from compulsory education on physical or psychological grounds."),
)

INTERVENTION_TYPES = _codes(
    Code("kernpartnerteam", "kernpartnerteam / actietafel", "core partner team / action table",
         "Leerplicht, jeugdarts or jeugdverpleegkundige, begeleider passend onderwijs and gezinswerker "
         "discuss the pupil and agree a plan."),
    Code("verzuimcoach", "verzuimcoach", "absence coach", "A coach who works with the pupil and family."),
    Code("mazl", "M@ZL", "M@ZL (medical advice for sick-reported pupils)",
         "Referral of a frequently or long sick-reported pupil to the youth doctor (jeugdarts)."),
)

ABSENCE_TYPES = _codes(
    Code("sick_days", "ziektedagen", "sick days", "School days absent reported sick (excused)."),
    Code("sick_reports", "ziekmeldingen", "sick reports", "Number of times reported sick."),
    Code("sick_long_spells", "lange ziekmeldingen", "long sick spells",
         "Sick reports lasting more than 6 consecutive school days."),
    Code("late_arrivals", "te laat komen", "late arrivals", "Number of late arrivals (unexcused)."),
    Code("luxury_days", "luxeverzuim", "luxury absence", "School days absent around holidays without permission."),
    Code("unexcused_hours", "overig ongeoorloofd verzuim", "other unexcused absence",
         "Hours of other unexcused absence (truancy), outside long-term absence episodes."),
    Code("long_absence_days", "dagen langdurig verzuim", "long-term absence days",
         "School days within a long-term absence episode (LRV) in that school year."),
)
"""Absence measures in the ``absence`` table (column name = code)."""

LEVELS = _codes(
    Code("po", "primair onderwijs", "primary education"),
    Code("vo", "voortgezet onderwijs", "secondary education"),
)
SCHOOL_TYPES = _codes(
    Code("bo", "basisonderwijs", "mainstream primary"),
    Code("sbo", "speciaal basisonderwijs", "special primary"),
    Code("vo", "voortgezet onderwijs", "secondary"),
)
VO_TRACKS = _codes(
    Code("vmbo", "vmbo", "pre-vocational"),
    Code("havo", "havo", "senior general secondary"),
    Code("vwo", "vwo", "pre-university"),
)
SEXES = _codes(Code("F", "meisje", "girl"), Code("M", "jongen", "boy"))

CODE_LISTS: dict[str, dict[str, Code]] = {
    "outcome": OUTCOMES,
    "episode_type": EPISODE_TYPES,
    "intervention_type": INTERVENTION_TYPES,
    "level": LEVELS,
    "school_type": SCHOOL_TYPES,
    "vo_track": VO_TRACKS,
    "sex": SEXES,
}

Kind = Literal["id", "int", "float", "bool", "str", "code", "date"]


@dataclass(frozen=True)
class Column:
    """A column of a table.

    Parameters
    ----------
    name : column name.
    kind : ``id`` (identifier: integers or strings, never empty unless nullable), ``int``, ``float``,
        ``bool``, ``str`` (free text), ``code`` (a value
        of the code list ``codes``) or ``date``.
    description : what it holds (used in the data dictionary).
    required : whether a table must have the column. Optional columns are validated when present.
    nullable : whether missing values are allowed.
    codes : name of the code list in ``CODE_LISTS`` (``kind="code"`` only).
    min, max : inclusive bounds for numeric columns.
    simulated_only : the column exists only in simulated cohorts (true values behind recorded ones).
    """

    name: str
    kind: Kind
    description: str
    required: bool = True
    nullable: bool = False
    codes: str | None = None
    min: float | None = None
    max: float | None = None
    simulated_only: bool = False


@dataclass(frozen=True)
class Table:
    """A table: its columns, primary key and foreign keys ``{column: (table, column)}``."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


_FIRST_YEAR, _LAST_YEAR = 1990, 2100
"""The range of the year columns (school years, cohorts, approach start years)."""

FIRST_DATE = pd.Timestamp(f"{_FIRST_YEAR}-01-01")
LAST_DATE = pd.Timestamp(f"{_LAST_YEAR + 1}-12-31")
"""The range of every date column: the calendar years of the school years 1990/91 to 2100/01. A date
outside it (such as 1900-01-05, which an Excel cell holding 5 becomes) is an error."""

MISSING_TEXT: frozenset[str] = frozenset({
    # pandas' default missing-value text (``pandas.read_csv(na_values=...)``), in lower case
    "null", "nan", "-nan", "none", "na", "n/a", "<na>", "#n/a", "#n/a n/a", "#na",
    "-1.#ind", "-1.#qnan", "1.#ind", "1.#qnan",
    # other spellings of "no value": pandas' missing date, placeholders, Dutch "niet van toepassing"
    "nat", "nil", "-", "--", "?", "n.v.t.", "n.v.t", "nvt",
    # Excel's error values, written as text
    "#null!", "#div/0!", "#value!", "#ref!", "#name?", "#num!", "#spill!", "#calc!", "#getting_data",
})
"""Text that stands for a missing or failed value and is therefore never an identifier.

Compared after surrounding blanks are removed and in lower case (``NULL``, ``NaN``, `` N/A `` are
all in it). In an identifier column (kind ``id``) such text is an error, also where the column may
be empty (``pupils.vo_school_id``): a missing identifier is an empty cell. Other columns are not
affected (a code or number column rejects such text as an invalid value anyway; when reading CSV
and Excel files, :mod:`verzuimmodel.io` still reads pandas' missing-value text there as missing)."""


def _count(name: str, description: str, *, max: float | None = None, **kw) -> Column:
    return Column(name, "int", description, min=0, max=max, **kw)


_ABSENCE_MEASURES = (
    _count("sick_days", "School days absent reported sick.", max=366),
    _count("sick_reports", "Number of sick reports.", max=366),
    _count("sick_long_spells", "Sick reports lasting more than 6 consecutive school days.", max=366),
    _count("late_arrivals", "Number of unexcused late arrivals.", max=2000),
    _count("luxury_days", "School days of luxury absence (around holidays, without permission).", max=366),
    Column("unexcused_hours", "float", "Hours of other unexcused absence outside long-term episodes.",
           min=0, max=366 * 8),
)

TABLES: dict[str, Table] = {
    "schools": Table(
        "schools",
        "One row per school (PO or VO).",
        (
            Column("school_id", "id", "School identifier (e.g. BRIN + location)."),
            Column("region_id", "id", "Region (RMC-regio or samenwerkingsverband) the school belongs to."),
            Column("level", "code", "School level.", codes="level"),
            Column("school_type", "code", "School type.", codes="school_type"),
            Column("approach_start_year", "int",
                   "School year (its first calendar year, e.g. 2018 for 2018/19) in which the PO preventive "
                   "approach started at this school; empty if never.",
                   nullable=True, min=_FIRST_YEAR, max=_LAST_YEAR),
            Column("mazl_offered", "bool", "The school offers M@ZL (JGZ consults for pupils meeting the "
                   "sick-report criterion).", required=False),
        ),
        key=("school_id",),
    ),
    "pupils": Table(
        "pupils",
        "One row per pupil.",
        (
            Column("pupil_id", "id", "Pseudonymised pupil identifier."),
            Column("po_school_id", "id", "Primary school attended."),
            Column("vo_school_id", "id", "Secondary school attended; empty if not (yet) in VO.", nullable=True),
            Column("cohort", "int", "School year (first calendar year) in which the pupil was in group 3.",
                   min=_FIRST_YEAR, max=_LAST_YEAR),
            Column("sex", "code", "Sex.", codes="sex"),
            Column("disadvantaged", "bool", "Low parental education (onderwijsachterstand indicator)."),
            Column("chronic_illness", "bool", "Chronic physical or mental illness known to JGZ."),
            Column("special_needs", "bool", "Special educational needs (SBO pupils and pupils with an arrangement)."),
            Column("vo_track", "code", "VO track in the first VO year; empty if not in VO.",
                   codes="vo_track", nullable=True),
            Column("followup_end", "date", "Last date the pupil is observed (end of follow-up or moving away)."),
            Column("followup_start", "date", "First date the pupil is observed (start of the registry's period or "
                   "moving in); if absent, from group 3.", required=False),
        ),
        key=("pupil_id",),
        foreign_keys={"po_school_id": ("schools", "school_id"), "vo_school_id": ("schools", "school_id")},
    ),
    "absence": Table(
        "absence",
        "One row per pupil per school year: exposure and recorded absence by type. Simulated cohorts also "
        "carry the true values behind the recorded ones (``*_true``).",
        (
            Column("pupil_id", "id", "Pupil."),
            Column("school_id", "id", "School attended that year."),
            Column("school_year", "int", "School year (first calendar year, e.g. 2018 for 2018/19).",
                   min=_FIRST_YEAR, max=_LAST_YEAR),
            Column("level", "code", "po or vo.", codes="level"),
            Column("grade", "int", "Group (PO, 1-8) or year (VO, 1-6).", min=1, max=8),
            Column("enrolled_days", "int", "School days enrolled (the exposure).", min=0, max=200),
            *_ABSENCE_MEASURES,
            _count("long_absence_days", "School days within a long-term absence episode (LRV).", max=200),
            *(Column(c.name + "_true", c.kind, "True value behind the recorded " + c.name + " (simulated only).",
                     required=False, min=c.min, max=c.max, simulated_only=True) for c in _ABSENCE_MEASURES),
            Column("mazl_signal", "bool", "The pupil met the M@ZL sick-report criterion this year (4 sick reports "
                   "in 12 school weeks, or more than 6 consecutive sick days).", required=False),
            Column("mazl_consult", "bool", "The pupil had an M@ZL consult with the JGZ this year.", required=False),
        ),
        key=("pupil_id", "school_year"),
        foreign_keys={"pupil_id": ("pupils", "pupil_id"), "school_id": ("schools", "school_id")},
    ),
    "episodes": Table(
        "episodes",
        "One row per long-term absence episode.",
        (
            Column("episode_id", "id", "Episode identifier."),
            Column("pupil_id", "id", "Pupil."),
            Column("school_id", "id", "School where the pupil was enrolled (last enrolled, for AV) at the start."),
            Column("episode_type", "code", "LRV, AV or 5a.", codes="episode_type"),
            Column("start_date", "date", "First day of absence (LRV, AV) or start of the exemption (5a)."),
            Column("end_date", "date",
                   "Day the episode ended or, if censored, the last day observed (at the latest the pupil's "
                   "followup_end); empty means still running at the pupil's followup_end.", nullable=True),
            Column("outcome", "code", "How the episode ended; 'censored' if no outcome was observed.",
                   codes="outcome"),
            Column("severity_score", "float", "Severity assessed at intake (standardised: mean 0, SD 1; higher is "
                   "more severe); used by the target-trial emulation to adjust for referral of the hardest cases.",
                   required=False, nullable=True, min=-10, max=10),
        ),
        key=("episode_id",),
        foreign_keys={"pupil_id": ("pupils", "pupil_id"), "school_id": ("schools", "school_id")},
    ),
    "interventions": Table(
        "interventions",
        "One row per in-episode intervention.",
        (
            Column("intervention_id", "id", "Intervention identifier."),
            Column("pupil_id", "id", "Pupil."),
            Column("episode_id", "id", "Episode during which it started."),
            Column("intervention_type", "code", "Type of intervention.", codes="intervention_type"),
            Column("start_date", "date", "Day the intervention started (within the episode and the pupil's "
                   "follow-up)."),
        ),
        key=("intervention_id",),
        foreign_keys={"pupil_id": ("pupils", "pupil_id"), "episode_id": ("episodes", "episode_id")},
    ),
}
"""The five tables of a cohort, in dependency order."""


@dataclass(frozen=True)
class FileSource:
    """Where a table was read from, for messages: the file's name, the sheet (Excel) and what its rows
    are called: ``"line"`` for the lines of a CSV file (as a text editor numbers them), ``"row"`` for the
    rows of a sheet (as a spreadsheet numbers them; the header is row 1) or of a Parquet file."""

    file: str
    sheet: str | None = None
    unit: Literal["line", "row"] = "row"

    @property
    def label(self) -> Message:
        """``absence.csv`` or ``sheet 'absence' of cohort.xlsx``, as a message."""
        if self.sheet is None:
            return Message("frame.source_file", file=self.file)
        return Message("frame.source_sheet", file=self.file, sheet=self.sheet)


class SchemaError(ValueError):
    """A cohort table does not match its declaration.

    The message names the table, the column, the first offending rows and what was expected, in the
    language in force (:mod:`verzuimmodel.i18n`): ``str(err)``; ``err.message("nl")`` in Dutch.
    When the table was read from a file, it names the file (and sheet) and the rows as the user
    sees them there: CSV lines (data row k is line k + 1 after the header, blank lines counted) or
    spreadsheet rows.

    Parameters
    ----------
    table : name of the table.
    column : the column concerned; several columns (a composite key, a rule over columns) are
        joined with ``", "``; None when the problem concerns the whole table.
    problem : what is wrong: a :class:`~verzuimmodel.i18n.Message` of the catalogue (translated),
        or plain text (written as it is in every language).
    rows : 1-based data row numbers of the offending rows in the table as read (data row 1 is
        the first row under the header). Only the first few need be given.
    expected : what was expected instead (a message or text).
    n_rows : how many rows offend in total, when ``rows`` holds only the first of them.
    values : the offending values, quoted as in the data, written after ``problem``.
    source : the file the table was read from (:class:`FileSource`), if any.
    file_rows : the line or row numbers in ``source`` of ``rows`` (same order).

    Attributes
    ----------
    table, column, rows, n_rows, source, file_rows
        As given (``rows`` and ``file_rows`` lists of int).
    problem, expected : str
        The English text (a :class:`~verzuimmodel.i18n.Message` when it comes from the catalogue;
        ``problem`` includes the quoted values).
    message_key : str or None
        The catalogue key of the problem (``"schema.invalid_values"``); None for plain text.
    params : dict
        The parameters: those of the problem, and ``table``, ``column``, ``rows``, ``n_rows``,
        ``values``, ``expected``, ``file``, ``sheet``, ``file_rows``.
    """

    def __init__(self, table: str, column: str | None, problem: str, rows: list | None = None,
                 expected: str | None = None, n_rows: int | None = None, *, values: str | None = None,
                 source: FileSource | None = None, file_rows: list | None = None):
        self.table, self.column = table, column
        self.problem = problem if values is None else Message("frame.with_values", problem=problem, values=values)
        self.rows = [int(r) for r in (rows if rows is not None else [])]
        self.n_rows = len(self.rows) if n_rows is None else int(n_rows)
        self.expected = expected
        self.source = source
        self.file_rows = [int(r) for r in (file_rows if file_rows is not None else [])]
        super().__init__(self.message("en"))

    @property
    def message_key(self) -> str | None:
        problem = self.problem
        if isinstance(problem, Message) and problem.key == "frame.with_values":
            problem = problem.params["problem"]
        return problem.key if isinstance(problem, Message) else None

    @property
    def params(self) -> dict:
        problem = self.problem
        out = {}
        if isinstance(problem, Message) and problem.key == "frame.with_values":
            out["values"] = problem.params["values"]
            problem = problem.params["problem"]
        if isinstance(problem, Message):
            out.update(problem.params)
        out.update(table=self.table, column=self.column, rows=self.rows, n_rows=self.n_rows, expected=self.expected,
                   file=self.source.file if self.source else None, sheet=self.source.sheet if self.source else None,
                   file_rows=self.file_rows)
        return out

    def located(self, source: FileSource, file_rows: list | None) -> "SchemaError":
        """This error, naming the file it was read from and the rows there (``file_rows`` for ``rows``)."""
        return type(self)(self.table, self.column, self.problem, self.rows, self.expected, self.n_rows,
                          source=source, file_rows=file_rows)

    def message(self, lang: str | None = None) -> str:
        """The message in ``lang`` (``"nl"`` or ``"en"``; default: the language in force)."""
        lang = lang or get_language()
        where = (Message("frame.table_in", table=self.table, source=self.source.label) if self.source
                 else Message("frame.table", table=self.table))
        parts = [where.render(lang)]
        if self.column:
            parts.append(Message("frame.column", column=self.column).render(lang))
        parts.append(Message("frame.problem", problem=self.problem).render(lang))
        if self.rows:
            located = bool(self.source and len(self.file_rows) == len(self.rows))
            numbers = self.file_rows if located else self.rows
            unit = f"frame.{self.source.unit}s" if located else "frame.data_rows"
            parts.append(Message(unit, n=self.n_rows, rows=", ".join(str(r) for r in numbers[:5])).render(lang))
            more = self.n_rows - min(len(self.rows), 5)
            if more > 0:
                parts.append(Message("frame.more", more=more).render(lang))
        if self.expected:
            parts.append(Message("frame.expected", expected=self.expected).render(lang))
        return "".join(parts)

    def __str__(self) -> str:
        return self.message()

    def __reduce__(self):
        return _rebuild_schema_error, (self.table, self.column, self.problem, self.rows, self.expected, self.n_rows,
                                       self.source, self.file_rows)


def _rebuild_schema_error(table, column, problem, rows, expected, n_rows, source=None, file_rows=None) -> SchemaError:
    return SchemaError(table, column, problem, rows, expected, n_rows, source=source, file_rows=file_rows)


def empty_table(name: str) -> pd.DataFrame:
    """An empty DataFrame with the required columns of table ``name``."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[name].required_columns})


_VALIDATORS = ("validate_table", "validate_cohort")


def __getattr__(name: str):
    """``validate_table`` and ``validate_cohort``: validation lives in :mod:`verzuimmodel.validation`;
    its two functions are importable from here too, where the tables are declared. They are looked up
    on first use, so that this module and the validation modules (which read its declarations) do not
    import each other."""
    if name in _VALIDATORS:
        from . import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_VALIDATORS})
