"""The data dictionary and the calibration notes, rendered as Markdown from the declarations.

``data/README.md`` holds this text between the markers below; a test keeps it in step with
:mod:`verzuimmodel.schema` and :mod:`verzuimmodel.calibration`. Regenerate with::

    python -m verzuimmodel.datadict data/README.md
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from . import calibration
from .schema import CODE_LISTS, TABLES

BEGIN = "<!-- BEGIN GENERATED: python -m verzuimmodel.datadict data/README.md -->"
END = "<!-- END GENERATED -->"

_KIND = {"id": "identifier (integer or text)", "int": "integer", "float": "number", "bool": "true/false",
         "str": "text", "code": "code", "date": "date (YYYY-MM-DD)"}


def tables_markdown() -> str:
    out = []
    for t in TABLES.values():
        out.append(f"### `{t.name}`\n\n{t.description} Key: `{', '.join(t.key)}`.")
        if t.foreign_keys:
            refs = ", ".join(f"`{c}` → `{tab}.{col}`" for c, (tab, col) in t.foreign_keys.items())
            out.append(f"References: {refs}.")
        rows = ["| column | type | required | empty allowed | allowed values | description |",
                "|---|---|---|---|---|---|"]
        for c in t.columns:
            if c.codes:
                allowed = f"[{c.codes}](#code-list-{c.codes.replace('_', '-')})"
            elif c.min is not None or c.max is not None:
                allowed = f"{_num(c.min)} to {_num(c.max)}"
            else:
                allowed = ""
            required = "simulated only" if c.simulated_only else ("yes" if c.required else "no")
            rows.append(f"| `{c.name}` | {_KIND[c.kind]} | {required} | {'yes' if c.nullable else 'no'} | "
                        f"{allowed} | {c.description} |")
        out.append("\n".join(rows))
    return "\n\n".join(out)


def _num(x) -> str:
    if x is None:
        return "…"
    return f"{x:g}"


def codes_markdown() -> str:
    out = []
    for name, codes in CODE_LISTS.items():
        rows = [f"#### Code list `{name}`", "", "| code | Nederlands | English | meaning |", "|---|---|---|---|"]
        rows += [f"| `{c.code}` | {c.label_nl} | {c.label_en} | {c.description} |" for c in codes.values()]
        out.append("\n".join(rows))
    return "\n\n".join(out)


def calibration_markdown() -> str:
    t = calibration.targets().set_index("id")
    rows = ["| target | use | range | how the cohort's figure is computed |", "|---|---|---|---|"]
    for target_id, fn in calibration._FIGURES.items():
        row = t.loc[target_id]
        rng = "" if row.isna()[["low", "high"]].any() else f"{row['low']:g}–{row['high']:g}"
        doc = " ".join(inspect.getdoc(fn).split())
        rows.append(f"| `{target_id}` | {row['use']} | {rng} | {doc} |")
    skipped = [i for i in t.index if i not in calibration._FIGURES]
    rows.append("")
    rows.append("Not computed from a cohort: " + ", ".join(f"`{i}` ({t.loc[i, 'use']})" for i in skipped) + ".")
    return "\n".join(rows)


def generated() -> str:
    return "\n\n".join([
        BEGIN,
        "## Tables\n\n" + tables_markdown(),
        "## Code lists\n\n" + codes_markdown(),
        "## How each calibration figure is computed\n\n" + calibration_markdown(),
        END,
    ])


def update(path: str | Path) -> None:
    """Replace the generated block of ``path`` (or append it)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + generated() + tail
    else:
        text = text.rstrip() + "\n\n" + generated() + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    update(sys.argv[1] if len(sys.argv) > 1 else "data/README.md")
