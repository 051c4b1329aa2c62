"""Outputs never destroy what the package did not write: the marker, ``overwrite``, atomic
replacement and its recovery, leftovers of killed runs, locks, and formula escaping in CSV/Excel."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pandas as pd
import pytest

from cohort_factory import small_cohort
from verzuimmodel import outputs
from verzuimmodel.cohort import Cohort
from verzuimmodel.io import read_cohort, write_cohort
from verzuimmodel.outputs import (OUTPUT_MARKER, OutputExistsError, OutputLockedError, escape_formulas,
                                  output_directory, output_lock, unescape_formulas)
from verzuimmodel.schema import TABLES


@pytest.fixture
def cohort() -> Cohort:
    return Cohort(**small_cohort())


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def real_export(folder):
    """A user's own registry export: the cohort tables as CSV, no marker."""
    folder.mkdir()
    for name, df in small_cohort().items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


# -- replacing: only the package's own output, only when asked ----------------------------------


def test_a_real_export_is_never_replaced(tmp_path, cohort):
    export = real_export(tmp_path / "export")
    before = snapshot(export)
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError) as info:
            write_cohort(cohort, export, overwrite=overwrite)
        assert str(export) in str(info.value) and "did not write" in str(info.value)
        assert snapshot(export) == before
    with pytest.raises(OutputExistsError):
        cohort.to_csv(export, overwrite=True)
    assert snapshot(export) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_an_earlier_output_is_replaced_only_with_overwrite(tmp_path, cohort):
    path = write_cohort(cohort, tmp_path / "cohort", fmt="csv")
    assert (path / OUTPUT_MARKER).is_file()
    before = snapshot(path)
    with pytest.raises(OutputExistsError) as info:
        write_cohort(cohort, path, fmt="parquet")
    assert str(path) in str(info.value) and "overwrite" in str(info.value)
    assert snapshot(path) == before
    write_cohort(cohort, path, fmt="parquet", overwrite=True)
    assert sorted(p.name for p in path.iterdir()) == sorted([OUTPUT_MARKER, *(f"{t}.parquet" for t in TABLES)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


def test_a_users_file_added_to_an_output_is_never_deleted(tmp_path):
    out = tmp_path / "monitor"
    with output_directory(out) as tmp:
        (tmp / "quarterly.csv").write_text("quarter\n")
    (out / "aantekeningen.docx").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="aantekeningen.docx"):
        with output_directory(out, overwrite=True) as tmp:
            (tmp / "quarterly.csv").write_text("quarter\n2020Q1\n")
    assert (out / "aantekeningen.docx").read_bytes() == b"mine"
    assert (out / "quarterly.csv").read_text() == "quarter\n"


def test_an_empty_directory_is_written_into(tmp_path, cohort):
    (tmp_path / "empty").mkdir()
    write_cohort(cohort, tmp_path / "empty", fmt="csv")
    assert (tmp_path / "empty" / "pupils.csv").is_file()


def test_a_file_is_never_replaced_by_a_directory(tmp_path, cohort):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        write_cohort(cohort, tmp_path / "notes.txt", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# -- atomic replacement, recovery and leftovers of killed runs ----------------------------------


def test_replacement_exchanges_the_directories(tmp_path, cohort, monkeypatch):
    if not outputs._renameat2():
        pytest.skip("renameat2 is not available here")
    path = write_cohort(cohort, tmp_path / "c", fmt="csv")
    exchanged = []
    real = outputs._exchange
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: exchanged.append(b) or real(a, b))
    monkeypatch.setattr(outputs.os, "replace", lambda *a: pytest.fail("renamed instead of exchanged"))
    write_cohort(cohort, path, fmt="parquet", overwrite=True)
    assert exchanged == [path.absolute()]
    assert (path / "pupils.parquet").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_without_exchange_a_failed_second_rename_restores_the_old_output(tmp_path, cohort, monkeypatch):
    path = write_cohort(cohort, tmp_path / "c", fmt="csv")
    before = snapshot(path)
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    replace = os.replace
    calls = []

    def fail_second(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old aside, then the new one into place: fails
            raise OSError("rename failed")
        replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", fail_second)
    with pytest.raises(OSError, match="rename failed"):
        write_cohort(cohort, path, fmt="parquet", overwrite=True)
    assert len(calls) == 3 and snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def _killed_between_the_renames(tmp_path, cohort):
    """The state a run killed between 'old aside' and 'new into place' leaves: no target, old aside."""
    path = write_cohort(cohort, tmp_path / "c", fmt="csv")
    before = snapshot(path)
    os.rename(path, tmp_path / ".c.old-0123456789ab")
    return path, before


def test_a_read_restores_an_output_left_aside_by_a_killed_run(tmp_path, cohort):
    path, before = _killed_between_the_renames(tmp_path, cohort)
    back = read_cohort(path)
    assert len(back.pupils) == len(cohort.pupils)
    assert snapshot(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_a_write_restores_an_output_left_aside_by_a_killed_run(tmp_path, cohort):
    path, before = _killed_between_the_renames(tmp_path, cohort)
    with pytest.raises(OutputExistsError, match="overwrite"):  # restored, then it is an earlier output
        write_cohort(cohort, path, fmt="parquet")
    assert snapshot(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_leftovers_of_killed_runs_are_cleaned_at_the_next_write(tmp_path, cohort):
    path = write_cohort(cohort, tmp_path / "c", fmt="csv")
    partial = tmp_path / ".c.tmp-aaaaaaaaaaaa"           # a killed write: marked, half written
    partial.mkdir()
    (partial / OUTPUT_MARKER).write_text("written by verzuimmodel\n")
    (partial / "pupils.csv").write_text("pupil_id\n101\n")
    old = tmp_path / ".c.old-bbbbbbbbbbbb"               # killed after the swap, before the old was removed
    old.mkdir()
    (old / OUTPUT_MARKER).write_text("written by verzuimmodel\n")
    foreign = tmp_path / ".c.tmp-not-ours"               # same name pattern, but no marker: not ours
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    write_cohort(cohort, path, fmt="parquet", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".c.tmp-not-ours", "c"]
    assert (foreign / "keep.txt").read_text() == "mine"


# -- one writer at a time -----------------------------------------------------------------------


def test_a_second_writer_gets_a_clear_error(tmp_path, cohort):
    path = tmp_path / "c"
    with output_lock(path):
        with pytest.raises(OutputLockedError) as info:
            write_cohort(cohort, path)
        assert str(path) in str(info.value) and str(os.getpid()) in str(info.value)
        assert not path.exists()
    write_cohort(cohort, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # the lock file is gone


def test_a_lock_held_by_another_process_and_a_stale_lock(tmp_path, cohort):
    path = tmp_path / "c"
    code = ("import sys, time; from verzuimmodel.outputs import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=f"process {holder.pid}"):
            write_cohort(cohort, path)
    finally:
        holder.kill()
        holder.wait()
    # the killed holder left its lock file with its (now dead) pid: the next writer takes it over
    lock = tmp_path / ".c.lock"
    assert lock.read_text().split() == [str(holder.pid)]
    write_cohort(cohort, path)
    assert (path / "pupils.parquet").is_file() and not lock.exists()


def test_lock_without_flock_checks_the_pid(tmp_path, cohort, monkeypatch):
    """Where ``fcntl`` is missing the lock is an O_EXCL file with the writer's pid."""
    monkeypatch.setattr(outputs, "fcntl", None)
    path = tmp_path / "c"
    with output_lock(path):
        with pytest.raises(OutputLockedError, match=str(os.getpid())):
            write_cohort(cohort, path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".c.lock").write_text(dead.stdout)   # a stale lock of a dead process
    write_cohort(cohort, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


# -- formula injection --------------------------------------------------------------------------


def test_escape_formulas_prefixes_text_and_leaves_numbers():
    df = pd.DataFrame({"text": ["=HYPERLINK(\"http://x\")", "+31 6", "-x", "@SUM(A1)", "\tTAB", "\rCR", "plain",
                                "'quoted", None],
                       "number": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                       "count": pd.array([-1, 2, 3, 4, 5, 6, 7, 8, None], dtype="Int64"),
                       "mixed": [-2, "-2", "-2+3", 4, "=1", 5.5, "a", "b", "c"]})
    out = escape_formulas(df)
    assert out["text"].tolist()[:8] == ["'=HYPERLINK(\"http://x\")", "'+31 6", "'-x", "'@SUM(A1)", "'\tTAB", "'\rCR",
                                        "plain", "''quoted"]          # a leading quote is doubled: reversible
    assert out["text"].iloc[8] is None
    pd.testing.assert_series_equal(out["number"], df["number"])
    pd.testing.assert_series_equal(out["count"], df["count"])
    assert out["mixed"].tolist() == [-2, "'-2", "'-2+3", 4, "'=1", 5.5, "a", "b", "c"]   # text is text
    assert df["text"].iloc[0].startswith("=")   # the input is not changed
    back = unescape_formulas(out["text"])
    assert back.tolist()[:8] == df["text"].tolist()[:8]


def test_escaped_headers():
    out = escape_formulas(pd.DataFrame({"=x": [1], "y": [2]}))
    assert list(out.columns) == ["'=x", "y"]


WEIRD_IDS = ["-5x", "+31612345678", "=1+1", "@home", "'quoted", "=2"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_cohort_exports_escape_and_read_back_exactly(tmp_path, fmt):
    tables = small_cohort()
    ids = {old: new for old, new in zip(tables["schools"]["school_id"], WEIRD_IDS)}
    for name, column in (("schools", "school_id"), ("pupils", "po_school_id"), ("pupils", "vo_school_id"),
                         ("absence", "school_id"), ("episodes", "school_id")):
        tables[name][column] = tables[name][column].map(lambda v: ids.get(v, v))
    cohort = Cohort(**tables)
    path = write_cohort(cohort, tmp_path / "c", fmt=fmt)
    if fmt == "csv":
        with open(path / "schools.csv", newline="", encoding="utf-8") as f:
            cells = [row[0] for row in csv.reader(f)][1:]
        assert cells == ["'-5x", "'+31612345678", "'=1+1", "'@home", "''quoted", "'=2"]
    else:
        import openpyxl

        sheet = openpyxl.load_workbook(path / "schools.xlsx").active
        cells = [c.value for c in sheet["A"]][1:]
        assert cells == ["'-5x", "'+31612345678", "'=1+1", "'@home", "''quoted", "'=2"]
        assert all(c.data_type == "s" for c in sheet["A"])   # text, never a formula
    back = read_cohort(path)
    assert back.schools["school_id"].tolist() == WEIRD_IDS
    assert back.pupils["po_school_id"].tolist() == [ids.get(v, v) for v in small_cohort()["pupils"]["po_school_id"]]
