"""Effect reports for policymakers: what helps thuiszitters back to school, and what a PO approach
does for later VO absence.

::

    import verzuimmodel as vm
    vm.report.build(scenario="default", seed=1, out="reports/")          # Dutch: reports/report.html + .pdf
    vm.report.build(vm.read_cohort("export/"), scenario="my_region.toml", lang="en", out="reports-en/",
                    sections=[*vm.report.DEFAULT_SECTIONS, "monitor"])

The report reads tidy results only (:mod:`.results`), with disclosure control applied before any
number reaches a table, a figure or a sentence (:mod:`verzuimmodel.disclosure`: nothing rests on
fewer than 10 pupils; no pupil identifiers; school identifiers only in the optional ``schools``
section, for schools of at least 10 pupils). All wording is in ``messages/<lang>.toml`` and the
templates; figures (:mod:`.figures`) are drawn by :mod:`verzuimmodel.plotting` and embedded as
data URIs; the PDF (:mod:`.pdf`) is the same HTML printed by headless Chromium.
"""

from .build import (DEFAULT_N_SIMS, DEFAULT_SECTIONS, HTML_NAME, OPTIONAL_SECTIONS, PDF_NAME, SECTIONS, build,
                    render_html)
from .results import Results, collect
from .text import LANGUAGES, messages

__all__ = ["DEFAULT_N_SIMS", "DEFAULT_SECTIONS", "HTML_NAME", "LANGUAGES", "OPTIONAL_SECTIONS", "PDF_NAME", "Results",
           "SECTIONS", "build", "collect", "messages", "render_html"]
