"""Writing outputs without ever destroying what the package did not write.

Every directory the package writes (a cohort, the monitor's tables, a report, a diagnosis run)
goes through this module:

- **The marker.** An output directory holds the file ``.verzuimmodel-output``
  (:data:`OUTPUT_MARKER`), which lists the names the package wrote there. An existing
  directory is replaced only if it carries the marker, holds nothing else than those names, and
  the caller asks for it (``overwrite=True``; on the command line ``--overwrite``). A file, a
  directory without the marker (a user's registry export, a folder of notes), or a marked one
  to which a user added files is never replaced: :class:`OutputExistsError` names the path and
  what to do. A new or empty directory is simply written.
- **Atomic replacement** (:func:`output_directory`): everything is written to a temporary
  directory ``.X.tmp-<id>`` beside ``X``, which then takes the place of ``X``. On Linux the two
  are swapped in one step with ``renameat2(RENAME_EXCHANGE)``, so ``X`` is never missing. Where
  that is unavailable, ``X`` is renamed to ``.X.old-<id>`` and the new directory to ``X``; a run
  killed between those two renames leaves no ``X`` but a complete ``.X.old-<id>``, and the next
  write to ``X`` or read of it (:func:`verzuimmodel.read_cohort`) puts it back (:func:`recover`).
- **Leftovers of killed runs** — ``.X.tmp-*`` and ``.X.old-*`` directories that carry the marker
  (or are empty) — are removed at the next write to ``X``. Directories of that name without the
  marker are left alone: the package did not make them.
- **One writer at a time** (:func:`output_lock`): a write holds the lock file ``.X.lock`` beside
  ``X``; a second writer gets :class:`OutputLockedError` at once, naming the process that holds it.
  Run directories that are written into over a long time and resumed (``diagnose --out``) use
  :func:`run_directory`; single files inside them are replaced with :func:`write_file`.
- **Formula injection** (:func:`escape_formulas`): text cells of CSV and Excel outputs that begin
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'`` (OWASP), so a
  spreadsheet shows them as text instead of running them; numbers stay numbers.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None

__all__ = ["OUTPUT_MARKER", "OutputExistsError", "OutputLockedError", "check_output", "is_output", "output_directory",
           "run_directory", "write_file", "add_file", "output_lock", "recover", "escape_formulas", "unescape_formulas",
           "to_csv", "FORMULA_PREFIXES", "recover_for_reading", "pid_alive"]

OUTPUT_MARKER = ".verzuimmodel-output"
"""Name of the file that marks a directory as written by verzuimmodel (it lists what was written)."""

_MARKER_HEADER = "written by verzuimmodel"
_TMP, _OLD, _LOCK = ".tmp-", ".old-", ".lock"
_ID = re.compile(r"[0-9a-f]{12}")


class OutputExistsError(FileExistsError):
    """The target exists and may not be replaced (the message says why and what to do)."""


class OutputLockedError(OSError):
    """Another process is writing the same output."""


# -- the marker ---------------------------------------------------------------------------------

def is_output(path: str | os.PathLike) -> bool:
    """Whether directory ``path`` carries :data:`OUTPUT_MARKER` (the package wrote it)."""
    return (Path(path) / OUTPUT_MARKER).is_file()


def _mark(path: Path, names: Iterable[str] = ()) -> None:
    """Write the marker into ``path``, listing ``names`` (file names or glob patterns) as the package's."""
    (path / OUTPUT_MARKER).write_text(_marker_text(names), encoding="utf-8")


def _marker_text(names: Iterable[str]) -> str:
    return "\n".join([_MARKER_HEADER, *sorted(set(names))]) + "\n"


def _owned_names(path: Path) -> list[str] | None:
    """The names the marker of ``path`` lists; None for a marker without a list (then everything is ours)."""
    lines = (path / OUTPUT_MARKER).read_text(encoding="utf-8").splitlines()[1:]
    names = [n for n in lines if n.strip()]
    return names or None


def _foreign(path: Path) -> list[str]:
    """Entries of the marked directory ``path`` that its marker does not list (a user's files).

    Lock files of the package (``.<name>.lock`` holding a pid, left by a killed run) are its own.
    """
    owned = _owned_names(path)
    if owned is None:
        return []
    return sorted(p.name for p in path.iterdir()
                  if p.name != OUTPUT_MARKER and not any(fnmatch.fnmatchcase(p.name, n) for n in owned)
                  and not _is_lock_file(p))


def _is_lock_file(p: Path) -> bool:
    return (p.name.startswith(".") and p.name.endswith(_LOCK) and p.is_file() and not p.is_symlink()
            and p.stat().st_size <= 32 and (_holder(p) is not None or p.stat().st_size == 0))


def _listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check that an output may be written to directory ``path``, before doing long work.

    ``path`` may be new or an empty directory. An existing output of the package (it carries
    :data:`OUTPUT_MARKER` and holds only what the package wrote) may be replaced when
    ``overwrite`` is true. Returns ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        ``path`` is a file; or a directory the package did not write (no marker), or to which
        files were added; or an earlier output and ``overwrite`` is false. The message names the
        path and what to do.
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputExistsError(f"'{path}' is a symbolic link; not replacing it: choose another path")
    if not path.exists():
        return path
    if not path.is_dir():
        raise OutputExistsError(f"'{path}' is a file, not a directory; not replacing it: choose another path")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return path
    if not is_output(path):
        raise OutputExistsError(f"'{path}' holds files verzuimmodel did not write ({_listing(entries)}); "
                                f"not replacing it: choose a new or empty directory")
    foreign = _foreign(path)
    if foreign:
        raise OutputExistsError(f"'{path}' is an earlier verzuimmodel output, but holds files verzuimmodel did not "
                                f"write ({_listing(foreign)}); not replacing it: move them, or choose another "
                                f"directory")
    if not overwrite:
        raise OutputExistsError(f"'{path}' holds an earlier verzuimmodel output; rerun with --overwrite "
                                f"(overwrite=True) to replace it, or choose another directory")
    return path


# -- locks --------------------------------------------------------------------------------------

def _lock_file(path: Path) -> Path:
    target = path.absolute()
    return target.parent / f".{target.name}{_LOCK}"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a pid may have been reused by another process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


def _holder(lock: Path) -> int | None:
    try:
        text = lock.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _locked(path: Path, lock: Path) -> OutputLockedError:
    pid = _holder(lock)
    who = f"process {pid}" if pid is not None else "another process"
    return OutputLockedError(f"'{path}' is being written by another process ({who}; lock file '{lock}'); wait "
                             f"until it has finished, or choose another directory")


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of output ``path``: the file ``.<name>.lock`` beside it, holding this process's pid.

    The lock is an ``fcntl.flock`` on that file. The kernel releases it when its process ends, however
    it ends (``kill -9`` included), so a lock left by a dead process is never in the way: the next
    writer takes it over, and the pid in the file is only there to name the holder in the error.
    (A lock made with ``O_EXCL`` and a pid check would instead have to trust that a pid was not
    reused.) The lock file is removed on release; a writer that opened it just before checks, after
    locking, that it still locks the file at that name. Where ``fcntl`` is missing (Windows) the lock
    is an ``O_EXCL`` lock file, taken over when the pid in it is not alive.

    Parameters
    ----------
    path : the output directory (or file); it need not exist. Missing parent directories are made.

    Raises
    ------
    OutputLockedError
        Another process (or another writer in this one) holds the lock.
    """
    path = Path(path)
    lock = _lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, lock) if fcntl is not None else _acquire_exclusive(path, lock)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield lock
    finally:
        try:
            lock.unlink()
        except FileNotFoundError:  # pragma: no cover - removed by hand
            pass
        os.close(fd)


def _acquire(path: Path, lock: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _locked(path, lock) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one


def _acquire_exclusive(path: Path, lock: Path) -> int:
    for _ in range(100):
        try:
            return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = _holder(lock)
            if pid is None or pid_alive(pid):
                raise _locked(path, lock) from None
            lock.unlink(missing_ok=True)  # a stale lock of a dead process: take it over
    raise _locked(path, lock)  # pragma: no cover - lost the race 100 times


# -- atomic replacement, recovery, leftovers ----------------------------------------------------

def _beside(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}{kind}{uuid.uuid4().hex[:12]}"


def _leftovers(target: Path, kind: str) -> list[Path]:
    """``.X.tmp-<id>`` or ``.X.old-<id>`` directories beside ``target`` that the package made."""
    prefix = f".{target.name}{kind}"
    found = []
    for p in target.parent.glob(f"{_glob_escape(prefix)}*"):
        if _ID.fullmatch(p.name[len(prefix):]) and p.is_dir() and not p.is_symlink() \
                and (is_output(p) or not any(p.iterdir())):
            found.append(p)
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def recover(path: str | os.PathLike, *, clean: bool = False) -> bool:
    """Put back an output that a run killed in the middle of replacing it left aside.

    When ``path`` is missing and a marked ``.X.old-<id>`` lies beside it, the newest is renamed
    back to ``path``. With ``clean``, leftover ``.X.tmp-*`` and ``.X.old-*`` directories of the
    package are then removed. The caller must hold the lock of ``path`` (:func:`output_lock`).
    Returns whether an output was put back.
    """
    target = Path(path).absolute()
    if not target.parent.is_dir():
        return False
    restored = False
    old = _leftovers(target, _OLD)
    if not os.path.lexists(target) and old:
        os.replace(old.pop(), target)
        restored = True
    if clean:
        for p in [*old, *_leftovers(target, _TMP)]:
            shutil.rmtree(p, ignore_errors=True)
    return restored


def recover_for_reading(path: str | os.PathLike) -> None:
    """:func:`recover` before a read of a missing ``path``, when no writer is busy with it."""
    target = Path(path).absolute()
    if os.path.lexists(target) or not target.parent.is_dir() or not _leftovers(target, _OLD):
        return
    try:
        with output_lock(target):
            recover(target)
    except OutputLockedError:
        pass  # a writer is replacing it right now and will put a complete one in place


_RENAMEAT2: list = []


def _renameat2():
    """libc's ``renameat2`` (Linux, glibc 2.28 or later), or None."""
    if not _RENAMEAT2:
        fn = None
        try:
            fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
        except OSError:  # pragma: no cover - no C library to load
            pass
        if fn is not None:
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
        _RENAMEAT2.append(fn)
    return _RENAMEAT2[0]


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap directories ``a`` and ``b`` in one step; False where the OS or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target``; an existing ``target`` is never missing (see the module)."""
    if not os.path.lexists(target):
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the old content
        return
    old = _beside(target, _OLD)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def output_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Write output directory ``path`` atomically: yield a temporary directory that replaces ``path``.

    While the block runs the lock of ``path`` is held (:func:`output_lock`). First an output left
    aside by a killed run is put back and leftovers of killed runs are removed (:func:`recover`);
    then ``path`` is checked (:func:`check_output`: new, empty, or an earlier output of the
    package with ``overwrite``). The block writes into the yielded directory; when it finishes
    without error, the marker listing what it wrote is added and the directory takes the place of
    ``path``. On an error the temporary directory is removed and ``path`` is left as it was.

    Raises
    ------
    OutputExistsError
        ``path`` may not be replaced (before the block runs).
    OutputLockedError
        Another process is writing ``path``.
    """
    target = Path(path).absolute()
    with output_lock(target):
        recover(target, clean=True)
        check_output(path, overwrite)
        tmp = _beside(target, _TMP)
        tmp.mkdir()
        try:
            _mark(tmp)  # at once, so that a killed run's directory is recognised as the package's
            yield tmp
            _mark(tmp, (p.name for p in tmp.iterdir()))
            _swap_in(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextmanager
def run_directory(path: str | os.PathLike, overwrite: bool = False, *, names: Iterable[str] = (),
                  legacy: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """A directory that a run writes into over time and resumes from (``diagnose --out``), locked.

    New or empty: made, with the marker. Marked (an earlier run): used as it is, so the run can
    resume, or with ``overwrite`` first replaced by a fresh empty directory (atomically, as
    :func:`output_directory`). Anything else is refused.

    Parameters
    ----------
    path : the directory.
    overwrite : start afresh in a marked directory (its content is discarded).
    names : names and glob patterns of what the run writes there; the marker lists them, and a
        marked directory holding anything else is not replaced.
    legacy : recognises a run directory written before the marker existed (it gets the marker).

    Raises
    ------
    OutputExistsError
        ``path`` is a file, or a non-empty directory the package did not write (not even with
        ``overwrite``), or it holds files the run does not write and ``overwrite`` was asked.
    OutputLockedError
        Another process is writing ``path``.
    """
    target = Path(path).absolute()
    names = list(names)
    with output_lock(target):
        recover(target, clean=True)
        if target.is_dir() and not is_output(target) and legacy is not None and legacy(target):
            _mark(target, names)
        if target.is_dir() and is_output(target) and overwrite:
            check_output(path, overwrite=True)
            fresh = _beside(target, _TMP)
            fresh.mkdir()
            try:
                _mark(fresh, names)
                _swap_in(fresh, target)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
        elif not (target.is_dir() and is_output(target)):
            check_output(path)  # new or empty
            target.mkdir(parents=True, exist_ok=True)
            _mark(target, names)
        yield Path(path)


def write_file(target: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Replace file ``target`` inside a marked output directory: ``write(tmp)``, then rename into place.

    Only a file in a directory that carries :data:`OUTPUT_MARKER` is replaced (the caller holds its
    lock, e.g. inside :func:`run_directory`). Temporary files ``.<name>.tmp-*`` that killed runs left
    there are removed first.

    Raises
    ------
    OutputExistsError
        The directory of ``target`` is not a marked output directory, or ``target`` is a directory.
    """
    target = Path(target)
    folder = target.parent
    if not is_output(folder):
        raise OutputExistsError(f"'{target}': '{folder}' is not a verzuimmodel output directory; not writing into it")
    if target.is_dir():
        raise OutputExistsError(f"'{target}' is a directory; not replacing it")
    prefix = f".{target.name}{_TMP}"
    for stale in folder.glob(f"{_glob_escape(prefix)}*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
    tmp = folder / f"{prefix}{uuid.uuid4().hex[:12]}{target.suffix}"
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def add_file(directory: str | os.PathLike, name: str, write: Callable[[Path], object]) -> Path:
    """Add file ``name`` to an output directory the package wrote, afterwards (a command's log).

    Holding the lock of ``directory`` (:func:`output_lock`), the marker first lists ``name`` as the
    package's (so the directory can still be replaced with ``overwrite``), then the file is written
    with :func:`write_file`. An earlier file of that name is replaced only when the marker already
    listed it: a user's file is never replaced.

    Raises
    ------
    OutputExistsError
        ``directory`` does not carry the marker, or ``name`` there is not the package's.
    OutputLockedError
        Another process is writing ``directory``.
    """
    folder = Path(directory)
    target = folder / name
    with output_lock(folder):
        if not is_output(folder):
            raise OutputExistsError(f"'{folder}' is not a verzuimmodel output directory; not writing into it")
        owned = _owned_names(folder)
        listed = owned is None or any(fnmatch.fnmatchcase(name, n) for n in owned)
        if os.path.lexists(target) and (not listed or target.is_symlink() or not target.is_file()):
            raise OutputExistsError(f"'{target}' was not written by verzuimmodel; not replacing it")
        if not listed:
            text = _marker_text([*owned, name])
            write_file(folder / OUTPUT_MARKER, lambda p: p.write_text(text, encoding="utf-8"))   # atomically
        return write_file(target, write)


# -- formula injection --------------------------------------------------------------------------

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A text cell beginning with one of these is run as a formula by spreadsheets (OWASP CSV injection)."""

_QUOTE = "'"


def _escape(value):
    if isinstance(value, str) and value.startswith((*FORMULA_PREFIXES, _QUOTE)):
        return _QUOTE + value
    return value


def _unescape(value):
    if isinstance(value, str) and value.startswith(_QUOTE):
        return value[1:]
    return value


def _is_text(dtype) -> bool:
    return dtype == object or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype))


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` fit to write to CSV or Excel: text that a spreadsheet would run is quoted.

    Every text cell (and column name) that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return gets a leading ``'`` (OWASP's advice against CSV injection): a spreadsheet shows
    it as text. A text cell that already begins with ``'`` gets one more, so that
    :func:`unescape_formulas` restores every value exactly. Numbers, negative ones included, are not
    text and are left as they are (so are dates and booleans).
    """
    out = df.copy()
    for i, dtype in enumerate(out.dtypes):
        if _is_text(dtype):
            out.isetitem(i, _map_text(out.iloc[:, i], _escape))
    out.columns = [_escape(c) for c in out.columns]
    return out


def _map_text(values: pd.Series, fn) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.rename_categories([fn(v) for v in values.cat.categories])
    return values.map(fn, na_action="ignore")


def unescape_formulas(values: pd.Series) -> pd.Series:
    """The values of a column written by :func:`escape_formulas`: one leading ``'`` of each text removed."""
    return _map_text(values, _unescape) if _is_text(values.dtype) else values


def to_csv(df: pd.DataFrame, file: str | os.PathLike, **kwargs) -> None:
    """Write ``df`` as UTF-8 CSV without its index, formula-escaped (:func:`escape_formulas`)."""
    escape_formulas(df).to_csv(file, index=False, encoding="utf-8", **kwargs)
