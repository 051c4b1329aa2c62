"""Effect reports for policymakers: what helps thuiszitters back to school, and what a PO approach
does for later VO absence.

::

    import verzuimmodel as vm
    vm.report.build(scenario="default", seed=1, out="reports/")          # -> reports/report.html (+ report.pdf)
    vm.report.build(vm.read_cohort("export/"), scenario="my_region.toml", lang="en", out="reports-en/",
                    sections=[*vm.report.DEFAULT_SECTIONS, "monitor"])

The report reads tidy results only (:mod:`.results`), with disclosure control applied before any
number reaches a table, a figure or a sentence (:mod:`verzuimmodel.disclosure`: nothing rests on
fewer than 10 pupils; no pupil identifiers; school identifiers only in the optional ``schools``
section, for schools of at least 10 pupils). All wording is in ``messages/<lang>.toml`` and the
templates; figures (:mod:`.figures`) are drawn by :mod:`verzuimmodel.plotting` and embedded as
data URIs; the PDF (:mod:`.pdf`) is the same HTML printed by headless Chromium. Without a
working Chromium the HTML is written all the same and a :class:`PdfNotMadeWarning` says why the
PDF is missing and how to get it.

The text is written for a policymaker: the summary answers each question in one plain sentence
first (:mod:`.summary`), effects are told in words beside their ratio (:mod:`.words`), every "not
shown" comes with the design's power, suppressed cells read "afgeschermd" with a legend, every
number is formatted in the language's style (:class:`.text.Fmt`), figures have alt texts built
from what they draw (:mod:`.figures`), and a glossary (:mod:`.glossary`) explains the technical
words that remain.
"""

from .build import (DEFAULT_N_SIMS, DEFAULT_SECTIONS, HTML_NAME, OPTIONAL_SECTIONS, PDF_NAME, SECTIONS,
                    PdfNotMadeWarning, build, pdf_not_made, render_html)
from .results import Results, collect
from .text import LANGUAGES, messages

__all__ = ["DEFAULT_N_SIMS", "DEFAULT_SECTIONS", "HTML_NAME", "LANGUAGES", "OPTIONAL_SECTIONS", "PDF_NAME",
           "PdfNotMadeWarning", "Results", "SECTIONS", "build", "collect", "messages", "pdf_not_made", "render_html"]
