"""The effect report: self-contained HTML checked in real headless Chromium, the PDF, the numbers,
disclosure control and bad input.

The report is built once per module (a small diagnosis, serial backend); its summary is checked for
what a policymaker needs (answers first, ratios in words, "niet aangetoond" with the design's power,
no jargon, a reading level, Dutch numbers, "afgeschermd" with a legend, a glossary of the technical
words), and so is the summary of the report on one's own data (``data/example``). Chromium is Debian's
``chromium`` and poppler-utils gives ``pdftoppm``/``pdftotext`` (``make test`` installs them).
Chromium runs with every host name unresolvable and a NetLog; the page's console messages are
read from Chromium's log (``--enable-logging=stderr --v=1``: one ``CONSOLE`` line per message).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import shutil
import subprocess
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import markupsafe
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import verzuimmodel as vm
from verzuimmodel import report
from verzuimmodel.cli import app
from verzuimmodel.disclosure import MIN_COUNT

N_SIMS = 3
HIDDEN = report.sections.messages("nl")["meta"]["suppressed"]
"""The label of a hidden cell ("afgeschermd"): a count under 10, or a cell it could be worked out from."""
HIDDEN_EN = report.sections.messages("en")["meta"]["suppressed"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS = ("headless Chromium and poppler-utils are needed "
         "(make test installs them: apt-get install chromium poppler-utils)")
DUTCH_SECTIONS = ("Samenvatting", "Terugkeer naar school", "De PO-aanpak en later verzuim in het VO",
                  "Kwaliteit van het bewijs", "Gegevens en methoden", "Begrippen")


@pytest.fixture(scope="module")
def tools():
    missing = [t for t, found in (("chromium", CHROMIUM), ("pdftoppm", shutil.which("pdftoppm")),
                                  ("pdftotext", shutil.which("pdftotext"))) if not found]
    assert not missing, f"{', '.join(missing)} not found: {NEEDS}"


@pytest.fixture(scope="module")
def cohort():
    return vm.simulate(vm.Scenario.default(), seed=1)


def _spy(mp: pytest.MonkeyPatch) -> dict:
    """Keep the Results that the next report build collects (``seen["results"]``)."""
    import importlib

    build = importlib.import_module("verzuimmodel.report.build")
    collect, seen = build.collect, {}

    def spy(*args, **kwargs):
        seen["results"] = collect(*args, **kwargs)
        return seen["results"]

    mp.setattr(build, "collect", spy)
    return seen


@pytest.fixture(scope="module")
def built(cohort, tmp_path_factory, tools, results_of):
    out = tmp_path_factory.mktemp("report") / "reports"
    with pytest.MonkeyPatch.context() as mp:
        seen = _spy(mp)
        path = report.build(cohort, seed=1, out=out, n_sims=N_SIMS, backend="serial", progress=False)
    assert path == out / report.HTML_NAME
    results_of["default"] = seen["results"]
    return out


@pytest.fixture(scope="module")
def results_of() -> dict:
    """The Results behind the module's reports, by name."""
    return {}


@pytest.fixture(scope="module")
def html(built):
    return (built / report.HTML_NAME).read_text(encoding="utf-8")


# -- HTML parsing -------------------------------------------------------------------------------

class _Page(HTMLParser):
    """Tags with their attributes, and table cells (``td``/``th``) with their class, data-value and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[dict] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in ("td", "th"):
            self._cell = {"tag": tag, "class": (a.get("class") or "").split(), "value": a.get("data-value"),
                          "text": ""}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._cell["text"] = self._cell["text"].strip()
            self.cells.append(self._cell)
            self._cell = None


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _count_cells_ok(page: _Page, hidden: str = HIDDEN) -> list[dict]:
    """The count cells breaking disclosure control (a count from 1 to 9 shown)."""
    bad = []
    for c in page.cells:
        if c["tag"] != "td" or "count" not in c["class"]:
            continue
        if c["text"] == hidden:
            if c["value"] != "" or "suppressed" not in c["class"]:
                bad.append(c)
            continue
        value = int(c["value"])
        shown = int(re.sub(r"[\s\u00a0\u202f,.]", "", c["text"]))
        if shown != value or 0 < value < MIN_COUNT:
            bad.append(c)
    return bad


def _bare_integers_ok(page: _Page) -> list[dict]:
    """Any table cell that is just a whole number must be 0 or at least MIN_COUNT."""
    bad = []
    for c in page.cells:
        if re.fullmatch(r"\d[\d\u00a0\u202f]*", c["text"]):
            n = int(re.sub(r"\D", "", c["text"]))
            if 0 < n < MIN_COUNT:
                bad.append(c)
    return bad


# -- Chromium -----------------------------------------------------------------------------------

def _chromium(tmp: Path, url: str, *args: str, width: int = 1000, height: int = 2400) -> tuple[str, Path]:
    """Run headless Chromium on ``url`` with network blocked; return its log and the NetLog path."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    netlog = profile.with_suffix(".netlog.json")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--enable-logging=stderr", "--v=1", f"--log-net-log={netlog}", "--hide-scrollbars",
           f"--window-size={width},{height}", *args, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr, netlog


def _console(log: str) -> list[str]:
    """Console messages of the page, from Chromium's log."""
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for over the network (not Chromium's own background requests)."""
    data = json.loads(netlog.read_text(encoding="utf-8", errors="replace") or "{}")
    types = {v: k for k, v in data.get("constants", {}).get("logEventTypes", {}).items()}
    urls = []
    for e in data.get("events", []):
        p = e.get("params") or {}
        if types.get(e.get("type")) == "URL_REQUEST_START_JOB" and "file://" in str(p.get("network_isolation_key", "")):
            if not str(p.get("url", "")).startswith(("file:", "data:")):
                urls.append(p["url"])
    return urls


@pytest.fixture(scope="module")
def browser(built, tmp_path_factory, tools):
    """Chromium's view of the report: screenshot, log and NetLog, and what a probe script measured."""
    tmp = tmp_path_factory.mktemp("chromium")
    page = built / report.HTML_NAME
    log, netlog = _chromium(tmp, page.as_uri(), f"--screenshot={tmp / 'desktop.png'}")
    # the probe: the same page plus one script (the report itself has none, and its CSP forbids scripts)
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probe = ("<script>const imgs=[...document.images];console.log('PROBE '+JSON.stringify({"
             "n:imgs.length,ok:imgs.filter(i=>i.complete&&i.naturalWidth>0&&i.naturalHeight>0).length,"
             "scroll:document.documentElement.scrollWidth,inner:window.innerWidth,"
             "font:getComputedStyle(document.body).fontSize}))</script>")
    (tmp / "probe.html").write_text(text.replace("</body>", probe + "</body>"), encoding="utf-8")
    probes = {}
    for name, width in (("desktop", 1000), ("phone", 390)):     # Chromium widens the phone to 500 px
        plog, _ = _chromium(tmp, (tmp / "probe.html").as_uri(), f"--screenshot={tmp / f'probe-{name}.png'}",
                            width=width, height=800)
        found = [_probe_json(line) for line in _console(plog) if "PROBE" in line]
        assert found, f"the probe script did not report (Chromium log tail: {plog[-800:]})"
        probes[name] = found[0]
    return {"log": log, "netlog": netlog, "screenshot": tmp / "desktop.png", "probes": probes,
            "phone": tmp / "probe-phone.png"}


def _probe_json(line: str) -> dict:
    m = re.search(r"PROBE (\{.*?\})", line.replace('\\"', '"'))
    assert m, line
    return json.loads(m.group(1))


# =============================================================================================
# self-contained, renders, no network
# =============================================================================================

def test_report_files_are_written_atomically(built):
    assert (built / report.HTML_NAME).stat().st_size > 10_000
    assert (built / report.PDF_NAME).stat().st_size > 10_000
    assert not list(built.parent.glob(".reports.tmp-*"))


def test_html_references_nothing_outside_itself(html):
    page = _parse(html)
    assert "http://" not in html and "https://" not in html
    assert not [a for t, a in page.tags if t == "script"]
    assert not [a for t, a in page.tags if t == "link"]
    for tag, attrs in page.tags:
        for key in ("src", "href", "srcset", "poster", "data"):
            if key in attrs:
                value = attrs[key] or ""
                assert value.startswith(("data:", "#")), (tag, key, value[:60])
    assert "@import" not in html and "url(" not in html
    assert 'name="viewport"' in html and "@media print" in html and "@media (max-width" in html


def test_every_figure_is_an_inline_png(html):
    imgs = [a for t, a in _parse(html).tags if t == "img"]
    assert len(imgs) >= 3              # return curves, interventions, estimators
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        raw = base64.b64decode(a["src"].split(",", 1)[1], validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
        with Image.open(io.BytesIO(raw)) as im:
            assert im.width > 200 and im.height > 100
            assert np.asarray(im.convert("L")).std() > 5       # not a blank image
        assert a.get("alt")


def test_chromium_renders_without_console_messages_or_network_requests(browser):
    assert _console(browser["log"]) == []
    assert _page_requests(browser["netlog"]) == []


def test_the_network_check_would_catch_a_request(tmp_path, tools):
    """Control for the test above: an external image is seen in the NetLog (and fails: no network)."""
    page = tmp_path / "leak.html"
    page.write_text('<!DOCTYPE html><html><body><img src="https://example.org/x.png">'
                    '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    log, netlog = _chromium(tmp_path, page.as_uri(), f"--screenshot={tmp_path / 'leak.png'}")
    assert _page_requests(netlog) == ["https://example.org/x.png"]
    assert any("boom" in line for line in _console(log))


def test_screenshot_is_not_blank_and_figures_load(browser):
    with Image.open(browser["screenshot"]) as im:
        grey = np.asarray(im.convert("L"), dtype=float)
    assert grey.std() > 20 and (grey < 128).mean() > 0.005
    for name, probe in browser["probes"].items():
        assert probe["n"] >= 3 and probe["ok"] == probe["n"], (name, probe)


def test_readable_on_a_phone(browser):
    """Headless Chromium's narrowest window is 500 px: below 40rem, so the phone layout applies."""
    phone, desktop = browser["probes"]["phone"], browser["probes"]["desktop"]
    assert phone["inner"] <= 640 < desktop["inner"]
    assert phone["font"] == "16px" and desktop["font"] != phone["font"]      # the phone style sheet is on
    assert phone["scroll"] <= phone["inner"], "the page is wider than the screen (tables must scroll inside)"
    with Image.open(browser["phone"]) as im:
        assert np.asarray(im.convert("L"), dtype=float).std() > 20


# =============================================================================================
# the PDF
# =============================================================================================

def test_pdf_pages_render_and_hold_the_sections(built, tmp_path, tools):
    pdf = built / report.PDF_NAME
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    for p in pages[:3]:
        with Image.open(p) as im:
            assert np.asarray(im.convert("L"), dtype=float).std() > 5
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True,
                          timeout=120).stdout
    flat = " ".join(text.split())
    for title in DUTCH_SECTIONS:
        assert title in flat, title
    assert "http://" not in text and "https://" not in text


# =============================================================================================
# the numbers are the fitted results
# =============================================================================================

def _nl(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}".replace(".", ",")


def test_intervention_effects_are_the_fitted_ones(html, cohort):
    eff = vm.survival.time_to_return(cohort).effects.set_index(["intervention", "method"])
    for iv in ("kernpartnerteam", "verzuimcoach"):
        for method in ("time_varying", "naive"):
            r = eff.loc[(iv, method)]
            cell = f"{_nl(r['estimate'])} ({_nl(r['conf_low'])}\u2013{_nl(r['conf_high'])})"
            assert cell in html, (iv, method, cell)
    r = eff.loc[("kernpartnerteam", "time_varying")]
    assert f"hazard ratio {_nl(r['estimate'])}; 95%-BI {_nl(r['conf_low'])}\u2013{_nl(r['conf_high'])}" in html


def test_estimators_are_the_fitted_ones(html, cohort):
    from verzuimmodel.report.text import Fmt
    from verzuimmodel.report.words import ratio_words

    for name in ("vo_did", "vo_nb_glm", "po_recorded_naive"):
        r = vm.effects.estimate(cohort, name).iloc[0]
        assert f"{_nl(r['estimate'])} ({_nl(r['conf_low'])}\u2013{_nl(r['conf_high'])})" in html, name
    # the summary gives the estimator that suits the default (staggered) design, difference in
    # differences, in words with its ratio and interval beside them ("ongeveer 17% minder ... (verhouding 0,83; ...)")
    r = vm.effects.estimate(cohort, "vo_did").iloc[0]
    summary = html[html.index('id="summary"'):html.index('id="return"')]
    words = ratio_words(Fmt(report.messages("nl")), r["estimate"])
    change = round(100 * abs(1 - r["estimate"]))
    assert words == f"ongeveer {change}% {'minder' if r['estimate'] < 1 else 'meer'}"
    assert (f"{words} ongeoorloofd verzuim (verhouding {_nl(r['estimate'])}; 95%-BI {_nl(r['conf_low'])}\u2013"
            f"{_nl(r['conf_high'])})") in summary
    # with the E-value of that estimate, in a sentence and in the table of the approach's section
    e = vm.effects.evalue(r["estimate"], r["conf_low"], r["conf_high"], measure="rate")
    sentence = vm.effects.evalue_sentence(float(e.point), float(e.ci), "ongeoorloofd verzuim in het VO",
                                          exposure_label="de aanpak op de basisschool")
    section = html[html.index('id="approach"'):html.index('id="quality"')]
    assert str(markupsafe.escape(sentence)) in section
    evalues = f"{vm.effects.evalue_text(e.point, 1, ',')} ({vm.effects.evalue_text(e.ci, 1, ',')})"
    assert evalues in section


def test_return_to_school_per_100_is_the_fitted_curve(html, cohort):
    curves = vm.survival.time_to_return(cohort).curves

    def cif(outcome, day):
        c = curves[(curves["outcome"] == outcome) & (curves["time"] <= day)]
        return c["estimate"].iloc[-1] if len(c) else 0.0

    n3 = round(100 * (cif("own_school", 91) + cif("other_school", 91)))
    n6 = round(100 * (cif("own_school", 182) + cif("other_school", 182)))
    summary = html[html.index('id="summary"'):html.index('id="return"')]
    answer = re.search(r'<div class="question" id="q-return">\s*<h3>[^<]*</h3>\s*<p class="answer">([^<]*)</p>',
                       summary).group(1)
    assert answer.startswith(f"Van elke 100 thuiszitters zitten er na 3 maanden {n3} weer op school")
    assert re.search(rf"na 3 maanden {n3} \(95%-BI \d+–\d+\)(,| en) na 6 maanden {n6} \(95%-BI", summary)
    own3 = f"{100 * cif('own_school', 91):.0f}%"
    assert own3 in html[html.index('id="return"'):]


def test_simulated_report_shows_calibration_and_truth(html, cohort):
    assert "Kalibratie" in html
    assert _nl(cohort.truth["po_approach_vo_rate_ratio"]) in html
    assert _nl(cohort.truth["intervention_hr"]["kernpartnerteam"]) in html


def test_quality_section_has_the_diagnosis_or_says_why(html):
    section = html[html.index('id="quality"'):html.index('id="methods"')]
    try:
        import verzuimmodel.evaluate  # noqa: F401
    except ImportError:
        assert "nog niet beschikbaar" in section
    else:
        assert f"in {N_SIMS} gesimuleerde studies" in section
        assert "Dekking" in section and "Power" in section


# =============================================================================================
# disclosure control and identifiers
# =============================================================================================

def test_count_cells_in_the_default_report_obey_the_rule(html):
    page = _parse(html)
    assert sum(c["tag"] == "td" and "count" in c["class"] for c in page.cells) > 20
    assert _count_cells_ok(page) == []
    assert _bare_integers_ok(page) == []


def _with_text_ids(c: vm.Cohort) -> vm.Cohort:
    """The cohort with recognisable text identifiers (so a leak would be visible in the HTML)."""
    school = {s: f"SCHOOLID{int(s):04d}" for s in c.schools["school_id"]}
    pupil = {p: f"PUPILID{int(p):06d}" for p in c.pupils["pupil_id"]}
    episode = {e: f"EPISODEID{int(e):06d}" for e in c.episodes["episode_id"]}
    t = {k: v.copy() for k, v in c.tables.items()}
    t["schools"]["school_id"] = t["schools"]["school_id"].map(school)
    for col in ("po_school_id", "vo_school_id"):
        t["pupils"][col] = t["pupils"][col].map(school)
    t["pupils"]["pupil_id"] = t["pupils"]["pupil_id"].map(pupil)
    for name in ("absence", "episodes", "interventions"):
        t[name]["pupil_id"] = t[name]["pupil_id"].map(pupil)
    for name in ("absence", "episodes"):
        t[name]["school_id"] = t[name]["school_id"].map(school)
    t["episodes"]["episode_id"] = t["episodes"]["episode_id"].map(episode)
    t["interventions"]["episode_id"] = t["interventions"]["episode_id"].map(episode)
    t["interventions"]["intervention_id"] = "INTERVENTIONID" + t["interventions"]["intervention_id"].astype(str)
    return vm.Cohort(**t, truth=c.truth, scenario=c.scenario, seed=c.seed)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A region of 5 PO and 2 VO schools over 3 cohorts: most groups are smaller than 10."""
    scen = vm.Scenario.default()
    scen = dataclasses.replace(scen, population=dataclasses.replace(scen.population, n_po_schools=5,
                                                                    n_vo_schools=2, n_cohorts=3))
    cohort = _with_text_ids(vm.simulate(scen, seed=3))
    out = tmp_path_factory.mktemp("small") / "report"
    html = report.build(cohort, out=out, n_sims=2, backend="serial", pdf=False, progress=False,
                        sections=[*report.DEFAULT_SECTIONS, "monitor"])
    return cohort, html.read_text(encoding="utf-8")


def test_small_groups_never_show_a_count_under_10(small):
    cohort, text = small
    page = _parse(text)
    counts = [c for c in page.cells if c["tag"] == "td" and "count" in c["class"]]
    assert len(counts) > 20
    assert any(c["text"] == HIDDEN for c in counts)                # the small groups are there, suppressed
    assert _count_cells_ok(page) == []
    assert _bare_integers_ok(page) == []


def test_no_identifier_appears(small):
    cohort, text = small
    for marker in ("PUPILID", "SCHOOLID", "EPISODEID", "INTERVENTIONID"):
        assert marker not in text


def test_schools_only_on_request_and_with_at_least_10_pupils(small, tmp_path):
    cohort, _ = small
    out = report.build(cohort, out=tmp_path / "schools", n_sims=0, pdf=False, progress=False,
                       sections=["schools"])
    text = out.read_text(encoding="utf-8")
    shown = set(re.findall(r"SCHOOLID\d+", text))
    assert shown
    sizes = (cohort.pupils["po_school_id"].value_counts()
             .add(cohort.pupils["vo_school_id"].dropna().value_counts(), fill_value=0))
    assert all(sizes[s] >= MIN_COUNT for s in shown)
    assert "PUPILID" not in text
    assert _count_cells_ok(_parse(text)) == []


# =============================================================================================
# languages, sections, messages
# =============================================================================================

def test_english_report(cohort, tmp_path):
    out = report.build(cohort, out=tmp_path / "en", lang="en", n_sims=0, pdf=False, progress=False,
                       sections=[*report.DEFAULT_SECTIONS, "monitor"])
    text = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in text
    for title in ("Summary", "Return to school", "Quality of the evidence", "Data and methods",
                  "Quarterly monitor of long-term absence", "The immortal-time trap"):
        assert title in text
    r = vm.survival.time_to_return(cohort).effects.set_index(["intervention", "method"]).loc[
        ("kernpartnerteam", "time_varying")]
    assert f"{r['estimate']:.2f} ({r['conf_low']:.2f}\u2013{r['conf_high']:.2f})" in text
    assert "switched off" in text            # n_sims=0: the quality section says so
    assert "Samenvatting" not in text
    assert _count_cells_ok(_parse(text), HIDDEN_EN) == []
    _check_summary(text, "en")
    # no design check here (n_sims=0): every "not shown" says that the chance is unknown, and why
    assert re.search(r"not shown; the chance of seeing one is unknown, because the study was not replayed", text)
    assert _number_problems(text, "en", cohort) == []
    assert _suppression_problems(text, HIDDEN_EN) == []
    assert _glossary_problems(text, "en") == []


def _keys(d: dict, prefix: str = "") -> dict[str, set]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_keys(v, f"{prefix}{k}."))
        else:
            text = " ".join(v) if isinstance(v, list) else str(v)
            out[f"{prefix}{k}"] = set(re.findall(r"\{(\w+)\}", text))
    return out


def test_error_messages_shown_in_a_report_never_hold_identifiers():
    from verzuimmodel.report.results import _message

    text = _message(ValueError("pupil 123 of school 04AA00 has rank 2"), frozenset({"123", "04AA00"}))
    assert text == "ValueError: pupil \u2026 of school \u2026 has rank 2"


def test_languages_have_the_same_messages_and_placeholders():
    folder = Path(report.__file__).parent / "messages"
    nl = _keys(tomllib.loads((folder / "nl.toml").read_text(encoding="utf-8")))
    en = _keys(tomllib.loads((folder / "en.toml").read_text(encoding="utf-8")))
    assert set(nl) == set(en)
    assert {k: v for k, v in nl.items() if en[k] != v} == {}


def test_bad_arguments_raise_before_any_output(cohort, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(ValueError, match="language"):
        report.build(cohort, out=out, lang="fr", progress=False)
    with pytest.raises(ValueError, match="section"):
        report.build(cohort, out=out, sections=["nonsense"], progress=False)
    with pytest.raises(ValueError, match="n_sims"):
        report.build(cohort, out=out, n_sims=-1, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        report.build(cohort, out=foreign, progress=False, pdf=False, n_sims=0)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert not out.exists()


def test_invalid_cohort_object_raises_schema_error(cohort, tmp_path):
    bad = dataclasses.replace(cohort, pupils=cohort.pupils.drop(columns=["cohort"]))
    with pytest.raises(vm.SchemaError):
        report.build(bad, out=tmp_path / "r", progress=False, pdf=False)
    assert not (tmp_path / "r").exists()


def test_failure_while_writing_leaves_no_half_written_report(cohort, tmp_path, monkeypatch, built):
    from verzuimmodel.report import pdf

    def broken(html, target, timeout=0):
        Path(target).write_bytes(b"%PDF-1.4 half")
        raise RuntimeError("printer on fire")

    monkeypatch.setattr(pdf, "print_pdf", broken)
    monkeypatch.setattr(pdf, "require_chromium", lambda: "chromium")
    new = tmp_path / "new"
    with pytest.raises(RuntimeError, match="printer on fire"):
        report.build(cohort, out=new, n_sims=0, progress=False)
    assert not new.exists() and list(tmp_path.iterdir()) == []
    # an earlier report is left exactly as it was
    old = tmp_path / "old"
    shutil.copytree(built, old)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with pytest.raises(RuntimeError, match="printer on fire"):
        report.build(cohort, out=old, n_sims=0, progress=False, overwrite=True)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


# =============================================================================================
# the text for a policymaker: answers first, ratios in words, "not shown" with the power, no
# jargon, a reading level, Dutch numbers, suppressed cells with a legend, a glossary
# =============================================================================================

JARGON = ("schatter", "estimator", "NB-mixed", "NB mixed", "mixed model", "power", "RMSE", "seed", "scenario",
          "default", "Cox", "bootstrap", "log-schaal", "log scale", "target trial", "Monte Carlo")
"""Words that must not appear in a summary (case-insensitive, at the start of a word)."""
READING_EASE = {"nl": 55.0, "en": 60.0}
"""Minimum Flesch–Douma (nl) / Flesch Reading Ease (en) of a summary: "fairly easy" text. The
summary of the default report scores about 62 (nl) and 71 (en); the summary's long sentences
before issue 14 score about 38 and 30 (tests/test_report_text.py holds them)."""
MAX_WORDS = 30
"""No sentence of a summary is longer than this many tokens (numbers and intervals included)."""
TECHNICAL = {
    "nl": ("hazard ratio", "betrouwbaarheidsinterval", "95%-BI", "verhouding", "schatter", "power", "afgeschermd",
           "thuiszitter", "cumulatieve incidentie", "E-waarde", "nagebootste proef", "onsterfelijke tijd",
           "vertekening", "dekking", "RMSE", "bootstrap", "Cox", "NB-mixed", "verschil-in-verschillen",
           "gecensureerd", "scenario", "seed", "log-schaal", "tijdsafhankelijk", "Monte Carlo", "kalibratie",
           "Aalen-Johansen", "niet aangetoond", "PO", "VO", "M@ZL", "kernpartnerteam", "verzuimcoach"),
    "en": ("hazard ratio", "confidence interval", "95% CI", "ratio", "estimator", "power", "suppressed",
           "cumulative incidence", "E-value", "emulated trial", "immortal time", "bias", "coverage", "RMSE",
           "bootstrap", "Cox", "NB mixed", "difference in differences", "censored", "scenario", "seed", "log scale",
           "time-varying", "Monte Carlo", "calibration", "Aalen", "not shown", "PO", "VO", "M@ZL",
           "core partner team", "absence coach"),
}
"""Technical words of the report, chosen here (not from the glossary itself): wherever one is used
outside the glossary, the glossary must have an entry whose term contains it."""
IN_WORDS = {"nl": r"ongeveer|\d+% (minder|meer|lager|hoger)|even (veel|groot)|keer zo",
            "en": r"about|\d+% (less|more|lower|higher)|as much|the same|times as"}
"""A ratio in words ("ongeveer 15% minder", in a range "13% minder")."""
NOT_SHOWN = {"nl": ("niet aangetoond", r"de kans daarop was \d+%|\(kans \d+%\)|de kans om het te zien is onbekend"),
             "en": ("not shown", r"the chance was \d+%|\(chance \d+%\)|the chance of seeing one is unknown")}


def _section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}"')
    return page[start:page.index("</section>", start)]


class _Blocks(HTMLParser):
    """The text of every paragraph, list item, heading and glossary entry (one string each)."""

    TAGS = ("p", "li", "h2", "h3", "h4", "dt", "dd", "figcaption", "caption", "th", "td")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._stack: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.TAGS:
            self._stack.append([])

    def handle_data(self, data):
        if self._stack:
            self._stack[-1].append(data)

    def handle_endtag(self, tag):
        if tag in self.TAGS and self._stack:
            text = " ".join("".join(self._stack.pop()).split())
            if text:
                self.blocks.append(text)


def _blocks(fragment: str) -> list[str]:
    parser = _Blocks()
    parser.feed(fragment)
    return parser.blocks


def _check_summary(page: str, lang: str) -> None:
    """The summary answers each question first, in plain words, readable, with ratios in words."""
    from verzuimmodel.report import readability as rd

    summary = _section(page, "summary")
    questions = re.findall(r'<div class="question" id="q-(\w+)">\s*<h3>([^<]*)</h3>\s*<p class="answer">([^<]*)</p>'
                           r'((?:\s*<p class="detail">[^<]*</p>)*)', summary)
    assert [q[0] for q in questions] == ["return", "interventions", "approach"]
    for key, question, answer, details in questions:
        assert question.endswith("?"), key
        first = rd.sentences(answer)[0]
        assert "95%" not in first and "(" not in first, (key, first)        # the plain answer, then the detail
        assert len(rd.sentences(answer)) <= 2, (key, answer)
    blocks = _blocks(summary)
    text = " ".join(blocks)
    found = [w for w in JARGON if re.search(rf"(?<!\w){re.escape(w)}", text, re.IGNORECASE)]
    assert found == [], found
    ease = rd.reading_ease(blocks, lang)
    assert ease >= READING_EASE[lang], (ease, lang)
    longest = max(rd.sentence_lengths(blocks))
    assert longest[0] <= MAX_WORDS, longest
    for sentence in rd.sentences(blocks):           # a ratio is never given without its meaning in words
        if re.search(r"\((verhouding|hazard ratio|ratio) \d", sentence):
            assert re.search(IN_WORDS[lang], sentence), sentence
    # every "not shown" (anywhere but the glossary) says in the same sentence what chance the study had
    word, chance = NOT_SHOWN[lang]
    body = page[:page.index('<section id="glossary"')]
    for sentence in rd.sentences(_blocks(body)):
        if word in sentence.lower():
            assert re.search(chance, sentence), sentence


def _check_power(page: str, res, lang: str) -> None:
    """The summary's "not shown" about the approach uses the design check's power for its estimator."""
    from verzuimmodel.report.text import Fmt, _direction
    from verzuimmodel.report.words import ratio_words

    r = res.estimates.set_index("estimator").loc[res.primary]
    if _direction(r["conf_low"], r["conf_high"]) != "unclear":
        return
    m = report.messages(lang)
    f = Fmt(m)
    dg = res.diagnosis.set_index("estimator").loc[res.primary]
    truth = float(np.exp(dg["true_value"]))
    key = "power.high" if dg["power"] >= 0.8 else "power.low"
    sentence = m.fmt(key, what=m["power"]["what_approach"], size=ratio_words(f, truth, style="size"),
                     power=f.pct(dg["power"]))
    assert str(markupsafe.escape(sentence)) in _section(page, "summary")


def _years(cohort) -> set[str]:
    """Years a report may print without grouping: the data's school years (and quarters) and the
    years quoted in the message files."""
    years = cohort.absence["school_year"]
    found = {str(y) for y in range(int(years.min()) - 1, int(years.max()) + 2)}
    folder = Path(report.__file__).parent / "messages"
    for lang in ("nl", "en"):
        found |= set(re.findall(r"(?<!\d)(?:19|20)\d\d(?!\d)", (folder / f"{lang}.toml").read_text(encoding="utf-8")))
    return found


def _number_problems(page: str, lang: str, cohort) -> list[str]:
    """Numbers not in the language's style in the visible text and alt texts: a decimal point in
    Dutch (a decimal comma in English), or a number of at least 1,000 without group separators."""
    from verzuimmodel import __version__

    page = re.sub(r"<(style|samp|code)\b.*?</\1>", " ", page, flags=re.S)
    alts = " ".join(re.findall(r'\balt="([^"]*)"', page))
    text = " ".join(_blocks(page)) + " " + alts
    text = markupsafe.Markup(text).unescape().replace(f"verzuimmodel {__version__}", "")
    bad = re.findall(r"\d+\.\d+" if lang == "nl" else r"\d+,\d{1,2}(?!\d)", text)
    years = _years(cohort)
    bad += [n for n in re.findall(r"(?<![\d.,\u00a0])\d{4,}(?![\d])", text) if n not in years]
    return bad


def _suppression_problems(page: str, hidden: str) -> list[str]:
    """Tables with a suppressed cell that is not "afgeschermd", a "< 10" or "x", or a missing legend."""
    bad = []
    for table in re.findall(r'<figure class="table">.*?</figure>', page, flags=re.S):
        cells = [c for c in _parse(table).cells if c["tag"] == "td"]
        for c in cells:
            if re.match(r"<\s*\d|^x$", c["text"]) or ("suppressed" in c["class"]) != (c["text"] == hidden):
                bad.append(c["text"])
        legend = 'class="legend"' in table
        if legend != any("suppressed" in c["class"] for c in cells):
            bad.append(f"legend {legend}: {table[:80]}")
    return bad


def _glossary_problems(page: str, lang: str) -> list[str]:
    """Technical words used outside the glossary without an entry, and entries for words not used."""
    from verzuimmodel.report.glossary import _pattern

    glossary = _section(page, "glossary")
    body = page.replace(glossary, "")
    text = " ".join(_blocks(body)) + " " + " ".join(re.findall(r'\balt="([^"]*)"', body))
    terms = re.findall(r"<dt[^>]*>([^<]*)</dt>", glossary)
    bad = [w for w in TECHNICAL[lang] if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)
           and not any(w.lower() in markupsafe.Markup(t).unescape().lower() for t in terms)]
    entries = report.messages(lang)["glossary"]["terms"]
    for key in re.findall(r'<dt id="term-([\w-]+)"', glossary):
        if not any(_pattern(w).search(text) for w in entries[key.replace("-", "_")]["match"]):
            bad.append(f"unused entry {key}")
    return bad


def test_summary_of_the_default_report(html, built, results_of, cohort):
    """Answers first, plain, readable; ratios in words; the approach's "niet aangetoond" with the power
    of its estimator in the design check."""
    _check_summary(html, "nl")
    _check_power(html, results_of["default"], "nl")
    res = results_of["default"]
    r = res.estimates.set_index("estimator").loc[res.primary]
    assert r["conf_low"] < 1 < r["conf_high"]                 # this report's estimate is one of "niet aangetoond"
    assert "Een effect van de aanpak is niet aangetoond" in _section(html, "summary")


def test_hazard_ratios_in_words_in_the_summary(html, cohort):
    from verzuimmodel.report.text import Fmt
    from verzuimmodel.report.words import ratio_words

    f = Fmt(report.messages("nl"))
    eff = vm.survival.time_to_return(cohort).effects.set_index(["intervention", "method"])
    r = eff.loc[("kernpartnerteam", "time_varying")]
    words = ratio_words(f, r["estimate"], "hazard")
    assert words == f"ongeveer {round(100 * (r['estimate'] - 1))}% hoger"
    assert (f"Met een kernpartnerteam is die kans {words} (hazard ratio {_nl(r['estimate'])}; 95%-BI "
            f"{_nl(r['conf_low'])}\u2013{_nl(r['conf_high'])}).") in _section(html, "summary")


def test_numbers_are_in_dutch_style_everywhere(html, cohort):
    assert _number_problems(html, "nl", cohort) == []
    # the check would see a number written the other way
    assert _number_problems("<p>3167 leerlingen, verhouding 0.85, in 2019</p>", "nl", cohort) == ["0.85", "3167"]
    assert _number_problems("<p>3\u00a0167 leerlingen, verhouding 0,85, in 2019</p>", "nl", cohort) == []


def test_suppressed_cells_read_afgeschermd_with_a_legend(html, small):
    assert _suppression_problems(html, HIDDEN) == []
    _, text = small
    assert text.count('class="legend"') >= 2 and _suppression_problems(text, HIDDEN) == []
    legend = report.messages("nl").fmt("meta.suppressed_legend", min=MIN_COUNT)
    assert "geen nul" in legend and str(markupsafe.escape(legend)) in text
    assert _suppression_problems('<figure class="table"><table><tr><td class="num">&lt; 10</td></tr></table>'
                                 '</figure>', HIDDEN) != []


def test_glossary_explains_the_technical_words_used(html, small):
    assert _glossary_problems(html, "nl") == []
    assert _glossary_problems(small[1], "nl") == []
    glossary = _section(html, "glossary")
    assert "<dt" in glossary and "Begrippen" in glossary
    # the methods may keep technical names, and point to the glossary
    assert 'href="#glossary"' in _section(html, "methods") and "Aalen-Johansen" in _section(html, "methods")


def test_alt_texts_say_what_each_figure_shows(html, results_of):
    from verzuimmodel.report.text import Fmt

    res = results_of["default"]
    f = Fmt(report.messages("nl"))
    alts = dict(zip(("return", "interventions", "estimators"), re.findall(r'\balt="([^"]*)"', html)))
    drawn = set(res.curves["outcome"])
    m = report.messages("nl")
    for o in ("own_school", "other_school", "work", "specialist_care", "exemption"):
        label = m.label("outcomes", o)
        if o in drawn:
            assert label in alts["return"].split("Niet getekend")[0], o
        else:
            assert label not in alts["return"].split("Niet getekend")[0], o
    for _, r in res.estimates.dropna(subset=["estimate"]).iterrows():
        label = markupsafe.escape(m.label("estimators", r["estimator"]))
        assert f"{label} {f.ratio(r['estimate'])}" in alts["estimators"]


# =============================================================================================
# the command line
# =============================================================================================

runner = CliRunner()


def _one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_cli_missing_data_dir(tmp_path):
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert result.exit_code == 2
    assert "nowhere" in _one_line_error(result)
    assert not out.exists()


def test_cli_invalid_cohort(tmp_path, cohort):
    data = tmp_path / "cohort"
    cohort.to_csv(data)
    pupils = (data / "pupils.csv").read_text().splitlines()
    (data / "pupils.csv").write_text("\n".join([pupils[0], pupils[1].replace(",", ",x", 1), *pupils[2:]]))
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--no-pdf"])
    assert result.exit_code == 2
    assert "pupils" in _one_line_error(result)
    assert not out.exists()


def test_cli_unknown_language_and_section(tmp_path):
    out = tmp_path / "reports"
    for args in (["--lang", "fr"], ["--section", "everything"], ["--n-sims", "-3"]):
        result = runner.invoke(app, ["report", "--out", str(out), *args])
        assert result.exit_code == 2, args
        _one_line_error(result)
    assert not out.exists()


def test_cli_report_from_a_data_directory(tmp_path, cohort):
    data = tmp_path / "cohort"
    cohort.to_parquet(data)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--lang", "en", "--no-pdf",
                                 "--n-sims", "0", "--section", "monitor"])
    assert result.exit_code == 0, result.output
    text = (out / report.HTML_NAME).read_text(encoding="utf-8")
    assert "Quarterly monitor" in text and not (out / report.PDF_NAME).exists()


def test_signal_section_shows_the_signal_evaluation(tmp_path):
    """Optional section: the early-warning comparison, numbers equal to vm.signal.evaluate."""
    import verzuimmodel as vm
    from verzuimmodel.report.results import SIGNAL_BOOTSTRAP

    cohort = vm.simulate(vm.Scenario.default(), seed=1)
    out = vm.report.build(cohort, out=tmp_path / "rep", sections=["signal"], n_sims=0, pdf=False, progress=False)
    html = out.read_text(encoding="utf-8")
    assert 'id="signal"' in html and "niets in dit onderdeel beslist over een leerling" in html
    t = vm.signal.evaluate(cohort, n_boot=SIGNAL_BOOTSTRAP)
    auc = t[(t["signal"] == "logistic_spline") & (t["metric"] == "auc") & (t["group"] == "all")
            & (t["validation"] == "grouped_cv")]["value"].iloc[0]
    assert f"{auc:.2f}".replace(".", ",") in html


# =============================================================================================
# outputs: an earlier report is replaced only when asked; one writer at a time
# =============================================================================================

def test_an_earlier_report_is_replaced_only_with_overwrite(cohort, tmp_path):
    from verzuimmodel.outputs import OutputExistsError

    out = report.build(cohort, out=tmp_path / "r", n_sims=0, pdf=False, progress=False, sections=["monitor"]).parent
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputExistsError, match="overwrite"):
        report.build(cohort, out=out, n_sims=0, pdf=False, progress=False, sections=["monitor"], lang="en")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    report.build(cohort, out=out, n_sims=0, pdf=False, progress=False, sections=["monitor"], lang="en",
                 overwrite=True)
    assert '<html lang="en">' in (out / report.HTML_NAME).read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_cli_report_second_writer_and_rerun(tmp_path, cohort):
    from verzuimmodel.outputs import output_lock

    data = cohort.to_parquet(tmp_path / "cohort")
    out = tmp_path / "reports"
    with output_lock(out):
        result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--no-pdf", "--n-sims", "0"])
    assert result.exit_code == 2
    line = _one_line_error(result)
    assert str(out) in line and "another process" in line
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--no-pdf", "--n-sims", "0",
                                 "--overwrite"])
    assert result.exit_code == 2 and "notes.txt" in _one_line_error(result)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# =============================================================================================
# a cohort without episodes or interventions
# =============================================================================================

@pytest.mark.parametrize("lang", ["nl", "en"])
def test_report_without_episodes_or_interventions(cohort, tmp_path, lang):
    from verzuimmodel.schema import empty_table

    empty = dataclasses.replace(cohort, episodes=empty_table("episodes"), interventions=empty_table("interventions"))
    out = report.build(empty, out=tmp_path / "r", lang=lang, n_sims=0, pdf=False, progress=False,
                       sections=["return", "monitor"])
    text = out.read_text(encoding="utf-8")
    m = report.messages(lang)
    assert m["return"]["no_episodes"] in text and m["monitor"]["no_episodes"] in text
    for raw in ("Error", "NaTType", "to_period", m.fmt("monitor.none", error="").strip()):
        assert raw not in text


# =============================================================================================
# the in-episode interventions: the emulated trial first, the time-varying Cox model second
# =============================================================================================

def test_emulated_trial_is_the_primary_intervention_analysis(html, cohort):
    from verzuimmodel.report import trials
    from verzuimmodel.survival import target_trial

    summary = html[html.index('id="summary"'):html.index('id="return"')]
    section = html[html.index('id="return"'):html.index('id="approach"')]
    r = target_trial(cohort, "kernpartnerteam", treat_day=trials.TRIAL_DAY, grace_days=trials.TRIAL_GRACE,
                     n_boot=trials.TRIAL_N_BOOT).contrasts.set_index("term")

    def points(x):
        v = round(100 * x)
        return f"{v:+d}".replace("-", "\u2212") if v else "0"

    for k in (3, 6, 12):
        rd = r.loc[f"rd_{k}m"]
        assert f"{points(rd['estimate'])} ({points(rd['conf_low'])} tot {points(rd['conf_high'])})" in section, k
    rr = r.loc["rr_3m"]
    e = vm.effects.evalue(rr["estimate"], rr["conf_low"], rr["conf_high"], measure="RR")
    sentence = str(markupsafe.escape(vm.effects.evalue_sentence(float(e.point), float(e.ci),
                                                                "een passende plek binnen 3 maanden")))
    assert sentence in section
    # the summary: a short E-value sentence for a clear effect; for an unclear one "niet aangetoond",
    # with why the chance to show it is unknown (the design check does not replay the trial)
    rd3 = r.loc["rd_3m"]
    clear = rd3["conf_low"] > 0 or rd3["conf_high"] < 0
    short = f"minstens een factor {vm.effects.evalue_text(e.point, 1, ',')} moeten zijn om dit weg te verklaren"
    assert (short in summary) == clear
    unknown = re.search(r"Een effect van [^.]*een kernpartnerteam[^.]* is niet aangetoond; de kans om het te zien "
                        r"is onbekend, omdat de nagebootste proef niet is nagespeeld\.", summary)
    assert bool(unknown) == (not clear)
    assert "Deze cijfers komen uit een nagebootste proef." in summary                    # one line why
    # the time-varying Cox model stays, as the secondary analysis, after the trial
    assert summary.index("Een tweede berekening kijkt") > summary.index("tweede verzuimmaand")
    assert "Secundaire analyse: kans op terugkeer per dag" in section


def test_emulated_trial_is_hidden_with_fewer_than_10_starters(cohort):
    from verzuimmodel.report.trials import TRIAL_DAY, TRIAL_GRACE, collect_trials

    iv = cohort.interventions.merge(cohort.episodes[["episode_id", "start_date"]], on="episode_id",
                                    suffixes=("", "_episode"))
    day = (iv["start_date"] - iv["start_date_episode"]).dt.days
    in_window = (iv["intervention_type"] == "mazl") & day.between(TRIAL_DAY, TRIAL_DAY + TRIAL_GRACE)
    assert in_window.sum() >= MIN_COUNT
    keep = ~in_window | (in_window.cumsum() <= MIN_COUNT - 1)          # 9 starters in the window remain
    tables = {**cohort.tables, "interventions": cohort.interventions[keep.to_numpy()].reset_index(drop=True)}
    few = vm.Cohort(**tables, truth=cohort.truth, scenario=cohort.scenario, seed=cohort.seed)
    t, notes = collect_trials(few, ["mazl", "kernpartnerteam"], str)
    assert notes.get("mazl") == "too_few" and "mazl" not in set(t["intervention"])
    assert t.loc[t["intervention"] == "kernpartnerteam", "estimate"].notna().all()
    from verzuimmodel.report.results import Results
    from verzuimmodel.report.text import Fmt
    from verzuimmodel.report.trial_text import trial_section

    m = report.sections.messages("nl")
    sec = trial_section(Results(overview={}, trials=t, trial_notes=notes), m, Fmt(m))
    assert sec["notes"] == [f"Over M@ZL (medisch advies bij ziekmelding) zegt de nagebootste proef niets: minder dan "
                            f"{MIN_COUNT} thuiszitters begonnen ermee in de tweede verzuimmaand."]
    rows = {cells[0].text: cells[1:] for cells, _ in sec["table"].rows}
    assert all(c.text == HIDDEN and c.suppressed for c in rows["M@ZL (medisch advies bij ziekmelding)"])
    assert not any(c.suppressed for c in rows["kernpartnerteam / actietafel"])


def test_trial_risk_differences_hidden_when_an_arm_has_1_to_9_places():
    import pandas as pd

    from verzuimmodel.report.trials import small_events

    assert small_events(pd.Series([0, 25])) is False
    assert small_events(pd.Series([9, 25])) is True
    assert small_events(pd.Series([10, 1])) is True
    assert small_events(pd.Series([10, 10])) is False


def test_return_curves_are_drawn_in_steps_of_at_least_10_events(cohort):
    from verzuimmodel.report.results import MIN_COUNT, _steps_of_at_least, collect
    from verzuimmodel.survival.prepare import episodes_table

    c = pd.DataFrame({"time": [0, 3, 5, 8, 9, 12, 20], "estimate": np.arange(7.0)})
    events = np.array([3, 5, 5, 5, 5, 5, 5, 5, 8, 8, 9, 9, 9, 12, 12, 12, 12, 12, 12, 12, 12, 20])
    kept = _steps_of_at_least(c, events)
    assert kept["time"].tolist() == [0, 8, 12]              # 10 events by day 8, 21 (>= 10 more) by day 12
    # the report's curves: between two drawn points, at least 10 events of that outcome
    res = collect(cohort, sections=["return"], n_sims=0)
    eps = episodes_table(cohort)
    school = np.sort(eps.loc[eps["returned"] == 1, "duration"].to_numpy())
    t = res.curves.loc[res.curves["outcome"] == "school", "time"].to_numpy()
    n = np.searchsorted(school, t, side="right")
    assert len(t) > 5 and (np.diff(n) >= MIN_COUNT).all() and (n[n > 0] >= MIN_COUNT).all()


def test_a_flags_measures_are_hidden_when_its_2x2_table_has_a_cell_of_1_to_9():
    from verzuimmodel.report.results import _small_confusion

    def signal(name, sens, ppv, alert, n, events):
        return [{"signal": name, "metric": k, "value": v, "n": n, "n_events": events}
                for k, v in (("auc", 0.8), ("sensitivity", sens), ("ppv", ppv), ("alert_rate", alert))]

    # 200 pupils, 40 events: rule a flags 30 of whom 25 true (cells 25, 5, 15, 155: 5 is small);
    # rule b flags 60 of whom 30 true (30, 30, 10, 130: none small)
    t = pd.DataFrame(signal("a", 25 / 40, 25 / 30, 30 / 200, 200, 40) + signal("b", 30 / 40, 0.5, 0.3, 200, 40))
    hidden = t[_small_confusion(t)]
    assert set(hidden["signal"]) == {"a"} and set(hidden["metric"]) == {"sensitivity", "ppv", "alert_rate"}


# =============================================================================================
# one's own data: the design check simulates regions like the user's (Scenario.from_cohort)
# =============================================================================================

EXAMPLE = Path(__file__).resolve().parent.parent / "data" / "example"


def _build_module():
    import importlib

    return importlib.import_module("verzuimmodel.report.build")


def test_own_data_report_diagnoses_regions_like_the_data(tmp_path, monkeypatch):
    """The report on data/example without a scenario: the diagnosis simulates regions with the
    example's schools and pupils (a scenario fitted to it, the default true effects), and says so."""
    build = _build_module()
    collect, seen = build.collect, {}

    def spy(*args, **kwargs):
        seen["results"] = collect(*args, **kwargs)
        return seen["results"]

    monkeypatch.setattr(build, "collect", spy)
    out = report.build(EXAMPLE, out=tmp_path / "r", n_sims=2, backend="serial", pdf=False, progress=False)
    res = seen["results"]
    example = vm.read_cohort(EXAMPLE)
    n_po, n_vo = int((example.schools["level"] == "po").sum()), int((example.schools["level"] == "vo").sum())
    assert (n_po, n_vo) == (14, 4)
    assert res.design_source == "fitted" and res.diagnosis_status == "done"
    assert len(res.diagnosis) and res.diagnosis["n_sims"].eq(2).all()
    # the simulated regions: the example's schools exactly, its pupils within 10%
    assert res.design_region["n_po_schools"] == n_po and res.design_region["n_vo_schools"] == n_vo
    assert abs(res.design_region["n_pupils"] / len(example.pupils) - 1) <= 0.10
    pop = res.design_scenario.population
    assert (pop.n_po_schools, pop.n_vo_schools) == (n_po, n_vo)
    assert res.design_scenario.approach == dataclasses.replace(
        vm.Scenario.default().approach, design="staggered", start_year=2016, pilot_schools=5, wave_size=2,
        share_treated=0.5)                                   # the example's roll-out; default true effects
    # the text says the regions are like the user's, in both languages
    text = out.read_text(encoding="utf-8")
    m = report.messages("nl")
    design = m.label("designs", "staggered")              # the roll-out found in the data
    intro = m.fmt("quality.intro_fitted", n_sims=2, design=design, n_po=n_po, n_vo=n_vo)
    assert str(markupsafe.escape(intro)) in text and "regio’s zoals de uwe" in text
    for label in (design, m.label("designs", "unknown")):
        assert str(markupsafe.escape(m.fmt("quality.intro_done", n_sims=2, design=label))) not in text
    en = report.render_html(res, lang="en")
    assert "regions like yours" in en and f"{n_po} primary and {n_vo} secondary schools" in en
    # the summary of one's own report passes the same checks as that of a simulated one
    for page, lang in ((text, "nl"), (en, "en")):
        _check_summary(page, lang)
        _check_power(page, res, lang)
        assert _number_problems(page, lang, example) == []
        assert _suppression_problems(page, report.messages(lang)["meta"]["suppressed"]) == []
        assert _glossary_problems(page, lang) == []
    assert "regio’s zoals de uwe" in _section(text, "summary")                # the summary says so too


def test_a_given_scenario_wins_over_the_fitted_one(tmp_path, monkeypatch):
    """--scenario given: the diagnosis simulates it; without: collect gets None and fits one to the data;
    a simulated cohort keeps its own scenario."""
    from verzuimmodel.report.results import design_scenario

    build = _build_module()
    seen = []

    class Stop(Exception):
        pass

    def spy(cohort, **kwargs):
        seen.append(kwargs["design_scenario"])
        raise Stop

    monkeypatch.setattr(build, "collect", spy)
    for extra in (["--scenario", "default"], []):
        result = runner.invoke(app, ["report", "--data", str(EXAMPLE), "--out", str(tmp_path / "r"), "--no-pdf",
                                     *extra])
        assert isinstance(result.exception, Stop), result.output
    assert seen[0] == vm.Scenario.default() and seen[1] is None
    example = vm.read_cohort(EXAMPLE)
    given, source = design_scenario(example, seen[0])
    assert source == "given" and given.population.n_po_schools == 40
    fitted, source = design_scenario(example)
    assert source == "fitted" and fitted.population.n_po_schools == 14 and fitted.name == "own data"
    small = dataclasses.replace(vm.Scenario.default(), population=dataclasses.replace(
        vm.Scenario.default().population, n_po_schools=6, n_vo_schools=2, n_cohorts=2))
    own, source = design_scenario(vm.simulate(small, seed=1))
    assert source == "cohort" and own == small


def test_a_national_design_check_says_it_simulated_one_region(built, results_of):
    """A national design is diagnosed on one average region, its power pooled over the regions: the
    quality section and the summary say so, and the table shows both powers."""
    from verzuimmodel.report.results import pool_regions
    from verzuimmodel.report.text import Fmt

    res = dataclasses.replace(results_of["default"])
    national = vm.Scenario.national()
    res.design_scenario, res.design_regions = national, national.population.n_regions
    res.diagnosis = pool_regions(res.diagnosis, res.design_regions)
    region = national.one_region().population
    for lang in ("nl", "en"):
        m = report.messages(lang)
        page = report.render_html(res, lang=lang)
        count = Fmt(m).count
        intro = m.fmt("quality.intro_regional", n_sims=count(res.n_sims), design=m.label("designs", res.overview[
            "design"] or "unknown"), n_po=count(region.n_po_schools), n_vo=count(region.n_vo_schools),
            k=count(res.design_regions))
        assert str(markupsafe.escape(intro)) in page
        assert str(markupsafe.escape(m["quality"]["col_power_region"])) in page
        summary = _section(page, "summary")
        assert str(markupsafe.escape(m.fmt("summary.check_regional", n_sims=count(res.n_sims),
                                           k=count(res.design_regions)))) in summary
        _check_summary(page, lang)
