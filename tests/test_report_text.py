"""The words of the effect report, without building one: number formatting, ratios in words,
"not shown" with the design's power, the reading-ease measure, the glossary's matching, and alt
texts that say what each figure draws.

The report built from a cohort is checked in ``test_report.py``; these tests feed small, known
tables to the functions that turn results into text and figures.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verzuimmodel import report
from verzuimmodel.report import figures as figs
from verzuimmodel.report import readability as rd
from verzuimmodel.report.glossary import used_terms
from verzuimmodel.report.results import Results
from verzuimmodel.report.text import Fmt, Table, _count, _est, messages
from verzuimmodel.report.words import HIGH_POWER, Power, not_shown, power_of, ratio_words

NL, EN = messages("nl"), messages("en")
F_NL, F_EN = Fmt(NL), Fmt(EN)
NBSP = "\u00a0"


# =============================================================================================
# numbers: one formatting function, the language's style
# =============================================================================================

@pytest.mark.parametrize("n, nl, en", [(0, "0", "0"), (999, "999", "999"), (1000, f"1{NBSP}000", "1,000"),
                                        (3167, f"3{NBSP}167", "3,167"), (10560, f"10{NBSP}560", "10,560"),
                                        (1234567, f"1{NBSP}234{NBSP}567", "1,234,567")])
def test_counts_are_grouped_from_1000(n, nl, en):
    assert F_NL.count(n) == nl and F_EN.count(n) == en
    assert F_NL.count_text(n) == nl


def test_decimals_and_signs_in_each_language():
    assert F_NL.ratio(0.8512) == "0,85" and F_EN.ratio(0.8512) == "0.85"
    assert F_NL.ratio(1234.5) == f"1{NBSP}234,50" and F_EN.ratio(1234.5) == "1,234.50"
    assert F_NL.signed(-0.0221) == "\u22120,022" and F_NL.signed(0.001) == "+0,001"
    assert F_NL.signed(-0.0001) == "+0,000"                     # never "−0,000"
    assert F_NL.pct(0.531) == "53%" and F_NL.signed_pct(-0.031) == "\u22123%"
    assert F_NL.points(0.052) == "+5" and F_NL.points(-0.031) == "\u22123" and F_NL.points(0.004) == "0"
    assert F_NL.plain(0.0401) == "0,0401" and F_NL.plain(6) == "6,0" and F_NL.plain(3300) == f"3{NBSP}300"
    assert F_NL.interval(0.63, 1.09) == "0,63\u20131,09"
    assert F_NL.year(2019) == "2019"                              # a year is never grouped


def test_suppressed_counts_read_afgeschermd_in_tables_and_sentences():
    assert F_NL.count(None) == "afgeschermd" and F_EN.count(np.nan) == "suppressed"
    assert F_NL.count_text(None) == "een afgeschermd aantal"
    cell = _count(F_NL, np.nan)
    assert (cell.text, cell.suppressed, cell.value, cell.css) == ("afgeschermd", True, "", "count suppressed")
    cell = _est(F_EN, 1.2, 1.0, 1.4, suppressed=True)
    assert cell.text == "suppressed" and cell.suppressed
    t = Table("t", [("a", "count")])
    t.add([_count(F_NL, 12)])
    assert not t.suppressed
    t.add([_count(F_NL, None)])
    assert t.suppressed                         # the template then prints the legend under the table


# =============================================================================================
# ratios in words
# =============================================================================================

@pytest.mark.parametrize("r, kind, nl, en", [
    (0.85, "rate", "ongeveer 15% minder", "about 15% less"),
    (1.46, "rate", "ongeveer 46% meer", "about 46% more"),
    (0.845, "rate", "ongeveer 16% minder", "about 16% less"),            # half up, not to even
    (1.004, "rate", "ongeveer even veel", "about as much"),
    (0.99, "rate", "ongeveer even veel", "about as much"),
    (0.98, "rate", "ongeveer 2% minder", "about 2% less"),
    (2.5, "rate", "ongeveer 2,5 keer zoveel", "about 2.5 times as much"),
    (1.40, "hazard", "ongeveer 40% hoger", "about 40% higher"),
    (0.83, "hazard", "ongeveer 17% lager", "about 17% lower"),
    (1.0, "hazard", "ongeveer even groot", "about the same"),
])
def test_ratio_in_words(r, kind, nl, en):
    assert ratio_words(F_NL, r, kind) == nl and ratio_words(F_EN, r, kind) == en


def test_ratio_words_round_to_the_nearest_whole_percentage():
    """Over a fine grid of ratios the words say the change to within half a percent."""
    for r in np.linspace(0.05, 1.99, 389):
        words = ratio_words(F_EN, r)
        change = 100 * abs(r - 1)
        if words == "about as much":
            assert change <= 1.5 + 1e-6, r
            continue
        pct = int(re.search(r"(\d+)%", words).group(1))
        assert pct >= 2 and abs(pct - change) <= 0.5 + 1e-6, (r, words)
        assert ("less" in words) == (r < 1), (r, words)


def test_the_size_of_a_simulated_effect():
    assert ratio_words(F_NL, 0.85, style="size") == "een effect van 15% minder verzuim"
    assert ratio_words(F_NL, 1.25, "hazard", "size") == "een 25% hogere kans op terugkeer"
    assert ratio_words(F_EN, 0.80, style="short") == "20% less"
    assert ratio_words(F_NL, np.nan) == F_NL.missing


# =============================================================================================
# "niet aangetoond" with the design's power, in the same sentence
# =============================================================================================

def _one_sentence(text: str) -> bool:
    return len(rd.sentences(text)) == 1


def test_not_shown_with_low_power_says_the_study_was_too_small():
    text = not_shown(F_NL, "van de aanpak", Power(value=0.27, true_ratio=0.85))
    assert text == ("Een effect van de aanpak is niet aangetoond, maar dit onderzoek was te klein om een effect van "
                    "15% minder verzuim betrouwbaar te zien: de kans daarop was 27%.")
    en = not_shown(F_EN, "of the approach", Power(value=0.27, true_ratio=0.85))
    assert "was not shown" in en and "too small" in en and "27%" in en and _one_sentence(en)


def test_not_shown_with_high_power_says_the_data_argue_against_it():
    text = not_shown(F_NL, "van de aanpak", Power(value=HIGH_POWER, true_ratio=0.85))
    assert "niet aangetoond" in text and "groot genoeg" in text and "80%" in text and "tegen" in text
    assert "te klein" not in text and _one_sentence(text)
    low = not_shown(F_NL, "van de aanpak", Power(value=HIGH_POWER - 0.01, true_ratio=0.85))
    assert "te klein" in low


@pytest.mark.parametrize("reason", ["off", "unavailable", "no_scenario", "fit_failed", "failed", "no_estimators",
                                    "not_covered", "no_effect", "trial"])
def test_not_shown_without_power_says_why_the_chance_is_unknown(reason):
    for m, f, word in ((NL, F_NL, "onbekend"), (EN, F_EN, "unknown")):
        text = not_shown(f, "x", Power(reason=reason))
        assert word in text and m["power_reasons"][reason] in text and _one_sentence(text)


def _diagnosis(rows):
    return pd.DataFrame(rows, columns=["estimator", "estimand", "scale", "true_value", "power", "cautionary"])


def test_power_of_reads_the_design_check():
    dg = _diagnosis([("vo_did", "po_approach_vo_rate_ratio_exposed", "log", math.log(0.85), 0.27, False),
                     ("vo_nb_glmm_sick", "po_approach_vo_sick_rate_ratio", "log", 0.0, 0.05, False),
                     ("vo_ipw", "po_approach_vo_rate_ratio", "log", math.log(0.85), np.nan, False)])
    res = Results(overview={}, diagnosis=dg, diagnosis_status="done")
    p = power_of(res, "vo_did")
    assert p.value == 0.27 and p.true_ratio == pytest.approx(0.85) and p.reason is None
    assert power_of(res, "vo_nb_glmm_sick").reason == "no_effect"     # its "power" is a false-positive rate
    assert power_of(res, "vo_ipw").reason == "failed"
    assert power_of(res, "vo_nb_glm").reason == "not_covered"
    assert power_of(Results(overview={}, diagnosis_status="off"), "vo_did").reason == "off"


# =============================================================================================
# reading ease
# =============================================================================================

@pytest.mark.parametrize("word, n", [("school", 1), ("verzuim", 2), ("thuiszitter", 3), ("leerlingen", 3),
                                     ("basisschool", 3), ("ongeveer", 3), ("aangetoond", 3),
                                     ("geïnteresseerd", 5), ("betrouwbaarheidsinterval", 7), ("ruïne", 3)])
def test_dutch_syllables(word, n):
    assert rd.syllables(word, "nl") == n


@pytest.mark.parametrize("word, n", [("the", 1), ("absence", 2), ("little", 2), ("reached", 1), ("started", 2),
                                     ("evidence", 3), ("primary", 3), ("school", 1)])
def test_english_syllables(word, n):
    assert rd.syllables(word, "en") == n


OLD_SUMMARY_NL = ("Een effect van de aanpak op later ongeoorloofd verzuim in het VO is niet aangetoond: de beste "
                  "schatting is een verhouding van 0,83 (95%-BI 0,63–1,09; schatter ‘Verschil-in-verschillen’, die "
                  "past bij gefaseerde invoering, pilotscholen eerst).")
"""A sentence of the summary before issue 14: the test of the summary's reading level must fail it."""
OLD_SUMMARY_EN = ("An effect of the approach on later unexcused absence in secondary school was not shown: the best "
                  "estimate is a ratio of 0.83 (95% CI 0.63–1.09; estimator ‘Difference in differences’, which suits "
                  "staggered roll-out, pilot schools first).")


def test_reading_ease_formulas():
    # 2 sentences, 8 words, 12 syllables (de school is dicht: 4; kin-de-ren blij-ven thuis van-daag: 8)
    text = "De school is dicht. Kinderen blijven thuis vandaag."
    assert rd.sentences(text) == ["De school is dicht.", "Kinderen blijven thuis vandaag."]
    assert rd.reading_ease(text, "nl") == pytest.approx(206.835 - 0.93 * 4 - 77 * 12 / 8)
    assert rd.reading_ease("The cat sat on the mat.", "en") == pytest.approx(206.835 - 1.015 * 6 - 84.6 * 1)
    assert rd.words("Na 3 maanden: 54 (95%-BI 48–62).") == ["Na", "maanden:", "(95%-BI"]
    assert rd.sentence_lengths(["Na 3 maanden: 54 (95%-BI 48–62)."]) == [(6, "Na 3 maanden: 54 (95%-BI 48–62).")]


# =============================================================================================
# the glossary: terms found in the report's text
# =============================================================================================

def test_glossary_terms_match_whole_acronyms_and_word_starts():
    assert {"thuiszitter", "po_vo", "aanpak"} <= set(used_terms(NL, "Thuiszitters en de PO-aanpak."))
    assert used_terms(NL, "de politie en de vogels") == []               # "PO" and "VO" only as whole words
    assert "power" in used_terms(EN, "Power: how often") and "betrouwbaarheidsinterval" in used_terms(EN, "95% CI")


def test_every_glossary_term_has_a_term_a_text_and_words_in_both_languages():
    folder = Path(report.__file__).parent / "messages"
    terms = {lang: tomllib.loads((folder / f"{lang}.toml").read_text(encoding="utf-8"))["glossary"]["terms"]
             for lang in ("nl", "en")}
    assert set(terms["nl"]) == set(terms["en"])
    for lang, t in terms.items():
        for key, entry in t.items():
            assert set(entry) == {"term", "text", "match"}, (lang, key)
            assert entry["match"] and all(w.strip() == w and w for w in entry["match"]), (lang, key)
            assert 1 <= len(rd.sentences(entry["text"])) <= 2, (lang, key)     # one or two plain sentences


# =============================================================================================
# alt texts say what each figure draws
# =============================================================================================

@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the report draws (instead of their PNGs)."""
    made = []

    def keep(fig):
        made.append(fig)
        return "data:image/png;base64,"

    monkeypatch.setattr(figs, "png_data_uri", keep)
    yield made
    import matplotlib.pyplot as plt

    for fig in made:
        plt.close(fig)


def _curve(outcome, times, levels):
    t = np.asarray(times, dtype=float)
    e = np.asarray(levels, dtype=float)
    return pd.DataFrame({"outcome": outcome, "time": t, "estimate": e, "conf_low": e * 0.8, "conf_high": e * 1.2})


def _legend(fig) -> list[str]:
    legends = [*fig.legends, *[ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


@pytest.mark.parametrize("m", [NL, EN])
def test_return_curves_alt_names_the_drawn_lines_only(drawn, m):
    f = Fmt(m)
    curves = pd.concat([_curve("own_school", [0, 30, 200, 400], [0, 0.2, 0.35, 0.42]),
                        _curve("other_school", [0, 60, 150], [0, 0.1, 0.18]),          # stops before a year
                        _curve("exemption", [0, 90, 380], [0, 0.04, 0.07])], ignore_index=True)
    counts = pd.DataFrame({"outcome": ["own_school", "other_school", "exemption", "work", "censored"],
                           "n_episodes": [120, 60, 20, np.nan, 15]})          # work: suppressed, not drawn
    res = Results(overview={"design": None}, curves=curves, outcome_counts=counts)
    fig = figs.return_curves(res, m)
    alt = fig["alt"]
    lines = _legend(drawn[0])
    assert lines == [m.label("outcomes", o) for o in ("own_school", "other_school", "exemption")]
    drawn_part, _, left_part = alt.partition(m.fmt("figures.return_alt_left_out", names="", min=10)[:12])
    for o, level in (("own_school", 0.35), ("exemption", 0.04)):          # the level on day 365
        assert m.fmt("figures.return_alt_line", outcome=m.label("outcomes", o), pct=f.pct(level)) in drawn_part
    assert m.fmt("figures.return_alt_line_stops", outcome=m.label("outcomes", "other_school"), pct=f.pct(0.18),
                 day="150") in drawn_part
    work = m.label("outcomes", "work")
    assert work not in drawn_part and work in left_part and work not in lines
    assert m.label("outcomes", "censored") not in alt


@pytest.mark.parametrize("m", [NL, EN])
def test_intervention_alt_lists_each_drawn_estimate_and_what_was_left_out(drawn, m):
    f = Fmt(m)
    e = pd.DataFrame({"intervention": ["kernpartnerteam", "kernpartnerteam", "mazl", "mazl"],
                      "method": ["time_varying", "naive", "time_varying", "naive"],
                      "estimate": [1.4, 0.83, np.nan, np.nan], "conf_low": [1.05, 0.63, np.nan, np.nan],
                      "conf_high": [1.86, 1.09, np.nan, np.nan], "n_treated": [117, 117, np.nan, np.nan],
                      "true_value": [np.nan] * 4})
    fig = figs.interventions(Results(overview={}, effects=e), m)
    ticks = [t.get_text() for t in drawn[0].axes[0].get_yticklabels()]
    items = fig["alt"].split(": ", 1)[1].split(". ")[0].split("; ")
    assert [i.rsplit(" ", 1)[0] for i in items] == ticks                   # one item per drawn row, in order
    assert [i.rsplit(" ", 1)[1] for i in items] == [f.ratio(1.4), f.ratio(0.83)]
    mazl = m.label("interventions", "mazl")
    assert not any(mazl in t for t in ticks) and fig["alt"].count(mazl) == 1
    assert m["figures"]["interventions_alt_naive_lower"] in fig["alt"]
    assert m["figures"]["alt_truth"] not in fig["alt"]                      # no true values drawn


def test_estimators_alt_marks_the_primary_and_the_cautionary(drawn):
    m = NL
    est = pd.DataFrame({"estimator": ["vo_did", "vo_nb_glm", "po_recorded_naive", "vo_ipw"],
                        "estimate": [0.83, 0.90, 1.46, np.nan], "conf_low": [0.63, 0.73, 1.09, np.nan],
                        "conf_high": [1.09, 1.11, 1.97, np.nan], "primary": [True, False, False, False],
                        "cautionary": [False, False, True, False], "true_value": [0.85, 0.85, 0.95, 0.85]})
    fig = figs.estimators(Results(overview={"design": "staggered"}, estimates=est), m)
    alt = fig["alt"]
    assert f"{m.label('estimators', 'vo_did')} 0,83{m['figures']['estimators_alt_primary']}" in alt
    assert f"{m.label('estimators', 'po_recorded_naive')} 1,46{m['figures']['estimators_alt_cautionary']}" in alt
    assert m.fmt("figures.estimators_alt", n=3, items="")[:-1] in alt                 # 3 drawn, not 4
    ticks = [t.get_text() for t in drawn[0].axes[0].get_yticklabels()]
    ipw = m.label("estimators", "vo_ipw")
    assert ipw not in ticks and alt.endswith(m.fmt("figures.estimators_alt_left_out", min=10, names=ipw))
    assert m["figures"]["alt_truth"] in alt


def test_stock_flow_alt_counts_the_quarters_with_a_suppressed_value(drawn):
    m = NL
    quarters = [f"2024Q{q}" for q in range(1, 5)] + [f"2025Q{q}" for q in range(1, 5)]
    stock = [30, 32, np.nan, 35, 1200, 36, 31, 29]
    inflow = [12, np.nan, 15, 11, 14, 13, 12, 11]
    t = pd.DataFrame({"quarter": quarters, "case_type": "LRV", "stock_start": stock, "inflow": inflow,
                      "outflow": 12.0, "stock_end": stock, "turnover": 0.4})
    fig = figs.stock_flow(Results(overview={}, monitor=t), m)
    ax = drawn[0].axes[0]
    crosses = sum(len(c.get_offsets()) for c in ax.collections if c.get_label() == "afgeschermd")
    assert crosses == 2                                     # what the chart marks as hidden
    alt = fig["alt"]
    assert m.fmt("figures.stock_flow_alt_hidden", n=2) in alt
    assert "2024Q1" in alt and "2025Q4" in alt and "(8 kwartalen)" in alt
    assert m.fmt("figures.stock_flow_alt_range", low="29", high=f"1{NBSP}200") in alt
    assert m["meta"]["suppressed"] in _legend(drawn[0])


# =============================================================================================
# the summary: answers first, from known results
# =============================================================================================

def _results(approach=(0.80, 0.70, 0.92), power=0.90, trial_kpt=(0.08, 0.02, 0.14)) -> Results:
    """Results of a made-up simulated region: return curves, two interventions (trial and hazard
    ratios), the approach's estimators and a design check."""
    pts = pd.DataFrame({"outcome": "school", "months": [3, 6, 12], "estimate": [0.54, 0.68, 0.77],
                        "conf_low": [0.48, 0.62, 0.71], "conf_high": [0.62, 0.75, 0.83]})
    eff = pd.DataFrame({"intervention": ["kernpartnerteam", "kernpartnerteam", "verzuimcoach", "verzuimcoach"],
                        "method": ["time_varying", "naive"] * 2, "estimate": [1.40, 0.83, 1.07, 0.65],
                        "conf_low": [1.05, 0.63, 0.75, 0.46], "conf_high": [1.86, 1.09, 1.50, 0.90],
                        "true_value": [1.5, 1.5, 1.25, 1.25]})
    trials = pd.DataFrame({"intervention": ["kernpartnerteam", "verzuimcoach"], "term": "rd_3m",
                           "estimate": [trial_kpt[0], 0.01], "conf_low": [trial_kpt[1], -0.2],
                           "conf_high": [trial_kpt[2], 0.2], "evalue": [1.9, 1.1], "evalue_ci": [1.3, 1.0]})
    est = pd.DataFrame({"estimator": ["vo_did", "vo_nb_glm", "po_recorded_naive"],
                        "estimand": ["po_approach_vo_rate_ratio_exposed", "po_approach_vo_rate_ratio",
                                     "po_approach_po_true_rate_ratio"],
                        "estimate": [approach[0], 0.9, 1.46], "conf_low": [approach[1], 0.73, 1.09],
                        "conf_high": [approach[2], 1.11, 1.97], "cautionary": [False, False, True],
                        "primary": [True, False, False], "true_value": [0.85, 0.85, 0.95]})
    dg = pd.DataFrame({"estimator": ["vo_did", "tv_cox_verzuimcoach"], "scale": "log",
                       "estimand": ["po_approach_vo_rate_ratio_exposed", "intervention_hr.verzuimcoach"],
                       "true_value": [math.log(0.85), math.log(1.25)], "power": [power, 0.27],
                       "bias": [-0.02, 0.0], "coverage": [0.94, 0.95], "n_sims": [1000, 1000],
                       "cautionary": [False, False]})
    return Results(overview={"simulated": True, "design": "staggered"}, curve_points=pts, effects=eff, trials=trials,
                   estimates=est, primary="vo_did", diagnosis=dg, diagnosis_status="done", design_source="cohort")


def _summary(res, m=NL):
    from verzuimmodel.report.summary import summary

    return {q["id"]: q for q in summary(res, m, Fmt(m))["questions"]}


def test_summary_answers_with_a_clear_effect():
    q = _summary(_results())
    assert q["return"]["answer"] == ("Van elke 100 thuiszitters zitten er na 3 maanden 54 weer op school, en na een "
                                     "jaar 77.")
    assert q["interventions"]["answer"] == ("Wat aantoonbaar helpt: een kernpartnerteam. Over een verzuimcoach geven "
                                            "deze gegevens nog geen duidelijk antwoord.")
    assert q["approach"]["answer"] == ("Ja: leerlingen van basisscholen met de aanpak hebben later in het VO ongeveer "
                                       "20% minder ongeoorloofd verzuim.")
    approach = " ".join(q["approach"]["details"])
    assert "(verhouding 0,80; 95%-BI 0,70–0,92)" in approach and "niet aangetoond" not in approach
    assert "De kans om een effect van 15% minder verzuim aan te tonen was daar 90%." in approach
    assert "1\u00a0000 keer nagespeeld" in approach                        # n_sims grouped too
    assert "minstens een factor" in approach                               # the E-value, for a clear effect
    helps = " ".join(q["interventions"]["details"])
    assert "Als een kernpartnerteam in de tweede verzuimmaand start, hebben na 3 maanden 8 méér" in helps
    # the verzuimcoach's trial is unclear: not shown, chance unknown (the trial is not replayed); its
    # hazard ratio is unclear too: not shown, with the power of its estimator in the design check
    assert ("Een effect van een verzuimcoach is niet aangetoond; de kans om het te zien is onbekend, omdat de "
            "nagebootste proef niet is nagespeeld.") in helps
    assert ("Een effect van een verzuimcoach is niet aangetoond, maar dit onderzoek was te klein om een 25% hogere "
            "kans op terugkeer betrouwbaar te zien: de kans daarop was 27%.") in helps


def test_summary_answers_when_the_effect_is_not_shown():
    low = _summary(_results(approach=(0.83, 0.63, 1.09), power=0.27))["approach"]
    assert low["answer"].startswith("Dat weten we nog niet: de beste schatting is ongeveer 17% minder")
    assert "te klein om een effect van 15% minder verzuim betrouwbaar te zien: de kans daarop was 27%." in \
        " ".join(low["details"])
    high = _summary(_results(approach=(0.97, 0.90, 1.05), power=0.92))["approach"]
    assert high["answer"].startswith("Waarschijnlijk niet, of minder dan verwacht")
    assert "groot genoeg" in " ".join(high["details"]) and "92%" in " ".join(high["details"])
    none = _summary(_results(trial_kpt=(0.01, -0.1, 0.12)))["interventions"]
    assert none["answer"] == ("Deze gegevens laten van geen enkele interventie duidelijk zien dat ze helpt. Een tweede "
                              "berekening wijst wel op een snellere terugkeer met een kernpartnerteam.")
    en = _summary(_results(), EN)["approach"]["answer"]
    assert en == ("Yes: pupils from primary schools with the approach later have about 20% less unexcused absence "
                  "in secondary school.")
