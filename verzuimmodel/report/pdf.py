"""PDF of a report: the same HTML printed by headless Chromium (``--print-to-pdf``).

Chromium runs without a sandbox, GPU, background networking, component updates or sync, with a
fresh profile in a temporary directory, and with every host name resolving to nothing
(``--host-resolver-rules``), so printing a report can never reach the network. The browser is
Debian's ``chromium`` (``apt-get install chromium``); ``VERZUIM_CHROMIUM`` names another binary.

Two failures are told apart: no Chromium at all (:class:`ChromiumNotFound`, a
``FileNotFoundError``) and a Chromium that is there but does not print (:class:`PdfError`: it
cannot be started, exits with an error, times out or writes no PDF). In both cases
:func:`verzuimmodel.report.build` writes the HTML all the same, without the PDF, and says so with
a :class:`~verzuimmodel.report.build.PdfNotMadeWarning` (why, and how to get the PDF).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["find_chromium", "chromium_command", "print_pdf", "CHROMIUM_FLAGS", "ChromiumNotFound", "PdfError"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND")
TIMEOUT = 180


class ChromiumNotFound(FileNotFoundError):
    """No Chromium binary: the PDF cannot be printed."""


class PdfError(RuntimeError):
    """Chromium was found but did not print the PDF (it could not be started, failed, timed out or
    wrote no PDF). The message says which, with the end of Chromium's error output."""


def find_chromium() -> str | None:
    """Path of the Chromium binary (``VERZUIM_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES` on PATH)."""
    env = os.environ.get("VERZUIM_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium binary, or :class:`ChromiumNotFound` saying where it was looked for."""
    found = find_chromium()
    if found is None:
        env = os.environ.get("VERZUIM_CHROMIUM")
        where = (f"VERZUIM_CHROMIUM names '{env}', which is not a program" if env else
                 f"none of {', '.join(CHROMIUM_NAMES)} is on PATH")
        raise ChromiumNotFound(f"chromium not found: the PDF is printed with headless Chromium, and {where}")
    return found


def chromium_command(user_data_dir: str | os.PathLike, *args: str, binary: str | None = None) -> list[str]:
    """A headless Chromium command line with the report's safe flags, a given profile and ``args``."""
    return [binary or require_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={os.fspath(user_data_dir)}", *args]


def print_pdf(html: str | os.PathLike, pdf: str | os.PathLike, timeout: float = TIMEOUT) -> Path:
    """Print the HTML file ``html`` to ``pdf`` (A4, page size and margins from the page's print CSS).

    Raises ``ChromiumNotFound`` without Chromium and :class:`PdfError` when Chromium does not print
    (it cannot be started, exits with an error, times out, or leaves no PDF).
    """
    html, pdf = Path(html).absolute(), Path(pdf).absolute()
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="verzuim-chromium-") as profile:
        cmd = chromium_command(profile, "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
                               f"--print-to-pdf={pdf}", html.as_uri(), binary=binary)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PdfError(f"chromium ({binary}) did not print the PDF within {timeout:.0f} s") from None
        except OSError as e:
            raise PdfError(f"chromium ({binary}) could not be started: {e.strerror or e}") from None
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = " ".join(" ".join(proc.stderr.strip().splitlines()[-3:]).split())
        what = f"exit code {proc.returncode}" if proc.returncode != 0 else "it wrote no PDF"
        raise PdfError(f"chromium ({binary}) could not print the PDF ({what})" + (f": {tail}" if tail else ""))
    return pdf
