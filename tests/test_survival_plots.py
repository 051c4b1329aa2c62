"""What verzuimmodel.survival_plots draws: the drawn numbers against the fits and the data.

Curves against ``predict``, bands against ``tidy()``'s limits, the risk table against counts from
the data, forest plots against the tidy table, residual scatters against ``CoxPH.residuals``.
"""

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from statsmodels.nonparametric.smoothers_lowess import lowess  # noqa: E402

from verzuimmodel.survival import AalenJohansen, CoxPH, KaplanMeier  # noqa: E402
from verzuimmodel.survival_plots import forest_plot, plot_curves, plot_residuals, risk_table_axes  # noqa: E402

REF = Path(__file__).resolve().parent / "reference"
EPISODES = pd.read_csv(REF / "nonparametric" / "episodes.csv")
RC = pd.read_csv(REF / "cox" / "right_censored.csv")
TIMES = [0, 15, 30, 60, 90, 120]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def by_gid(ax, prefix):
    return {a.get_gid().split(":", 1)[1] if ":" in a.get_gid() else a.get_gid(): a
            for a in [*ax.get_lines(), *ax.collections] if a.get_gid() and a.get_gid().startswith(prefix)}


def table_texts(fig):
    """{row y: [(x, text), ...]} of the risk table."""
    tab = risk_table_axes(fig)
    assert tab is not None
    rows = {}
    for t in tab.texts:
        x, y = t.get_position()
        rows.setdefault(y, []).append((x, t.get_text()))
    return {y: sorted(v) for y, v in rows.items()}


def at_risk_from_data(d, group, times):
    """Independent count: rows of the group still under observation (exit >= t) at each time."""
    g = d[d["group"] == group]
    return [f"{int((g['time'] >= t).sum()):,}" for t in times]


@pytest.fixture(scope="module")
def km():
    return KaplanMeier().fit(EPISODES, duration="time", event="status", by="group")


@pytest.fixture(scope="module")
def aj():
    return AalenJohansen().fit(EPISODES, duration="time", event="cause", by="group")


@pytest.fixture(scope="module")
def cox():
    return CoxPH().fit(RC, duration="time", event="status", covariates=["x1", "x2", "x3"])


# -- curves ---------------------------------------------------------------------------------------


def test_km_steps_equal_the_estimates_and_start_at_one(km):
    fig = km.plot(times=TIMES)
    ax = fig.axes[0]
    lines = by_gid(ax, "curve:")
    assert set(lines) == {"a", "b"}
    tidy = km.tidy()
    for g, line in lines.items():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert line.get_drawstyle() == "steps-post"
        assert x[0] == 0 and y[0] == 1
        np.testing.assert_array_equal(x[1:], tidy.loc[tidy["group"] == g, "time"])
        np.testing.assert_allclose(y, km.predict(x).xs(g, level="group").to_numpy(), rtol=0, atol=0)


def test_km_band_vertices_are_the_confidence_limits(km):
    ax = km.plot(risk_table=False).axes[0]
    bands = by_gid(ax, "band:")
    assert set(bands) == {"a", "b"}
    tidy = km.tidy()
    for g, band in bands.items():
        tg = tidy[tidy["group"] == g]
        verts = np.vstack([p.vertices for p in band.get_paths()])
        pts = {(round(x, 9), round(y, 9)) for x, y in verts}
        for t, lo, hi in zip(tg["time"], tg["conf_low"], tg["conf_high"]):
            for v in (lo, hi):
                if np.isfinite(v):
                    assert (round(t, 9), round(v, 9)) in pts
        allowed = np.concatenate([[1.0], tg["conf_low"].dropna(), tg["conf_high"].dropna()])
        assert np.isin(np.round(verts[:, 1], 9), np.round(allowed, 9)).all()


def test_km_censor_ticks_sit_on_the_curve_at_censoring_times(km):
    ax = km.plot(risk_table=False).axes[0]
    assert set(by_gid(ax, "censor:")) == {"a", "b"}
    for g, mark in by_gid(ax, "censor:").items():
        d = EPISODES[(EPISODES["group"] == g) & (EPISODES["status"] == 0)]
        x = np.asarray(mark.get_xdata(), float)
        np.testing.assert_array_equal(x, np.unique(d["time"]))
        np.testing.assert_array_equal(mark.get_ydata(), km.predict(x).xs(g, level="group").to_numpy())
    assert not by_gid(km.plot(censor=False).axes[0], "censor:")


def test_risk_table_counts_equal_the_data(km):
    fig = km.plot(times=TIMES)
    rows = table_texts(fig)
    assert sorted(rows) == [0.0, 1.0]
    for y, g in [(1.0, "a"), (0.0, "b")]:              # first group on top
        assert [x for x, _ in rows[y]] == TIMES
        assert [s for _, s in rows[y]] == at_risk_from_data(EPISODES, g, TIMES)
    tab = risk_table_axes(fig)
    assert [t.get_text() for t in tab.get_yticklabels()] == ["a", "b"]
    assert list(fig.axes[0].get_xticks()) == TIMES


def test_default_times_are_the_ticks_and_counts_still_match(km):
    fig = km.plot()
    rows = table_texts(fig)
    times = [x for x, _ in rows[1.0]]
    assert len(times) >= 3 and times[0] == 0
    assert [s for _, s in rows[1.0]] == at_risk_from_data(EPISODES, "a", times)


def test_plot_on_given_axes_and_switches(km):
    fig, ax = plt.subplots()
    assert km.plot(ax=ax) is fig
    assert risk_table_axes(fig) in ax.child_axes
    fig2 = km.plot(ci=False, risk_table=False)
    assert risk_table_axes(fig2) is None and not by_gid(fig2.axes[0], "band:")


def test_aalen_johansen_curves_and_table(aj):
    fig = aj.plot(times=TIMES)
    ax = fig.axes[0]
    lines = by_gid(ax, "curve:")
    assert len(lines) == 2 * len(aj.causes_)
    for label, line in lines.items():
        g, cause = label.split(": cause ")
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert y[0] == 0
        np.testing.assert_array_equal(y, aj.predict(x).xs(g, level="group")[int(cause)].to_numpy())
        tidy = aj.tidy()
        tc = tidy[(tidy["group"] == g) & (tidy["cause"] == int(cause))]
        hi = np.vstack([p.vertices for p in by_gid(ax, "band:")[label].get_paths()])[:, 1]
        assert np.isin(np.round(tc["conf_high"].dropna(), 9), np.round(hi, 9)).all()
    assert ax.get_ylabel() == "cumulative incidence"
    rows = table_texts(fig)
    assert [s for _, s in rows[1.0]] == at_risk_from_data(EPISODES, "a", TIMES)
    assert [s for _, s in rows[0.0]] == at_risk_from_data(EPISODES, "b", TIMES)


def test_curves_refuse_unfitted_and_foreign_objects():
    with pytest.raises(ValueError, match="not fitted"):
        KaplanMeier().plot()
    with pytest.raises(ValueError, match="not fitted"):
        AalenJohansen().plot()
    with pytest.raises(TypeError, match="KaplanMeier or AalenJohansen"):
        plot_curves(CoxPH())


def test_weighted_counts_show_one_decimal():
    km = KaplanMeier().fit(EPISODES, duration="time", event="status", weights="w")
    rows = table_texts(km.plot(times=[0]))
    assert rows[0.0][0][1] == f"{EPISODES['w'].sum():,.1f}"


# -- forest plot ----------------------------------------------------------------------------------


def forest_parts(ax):
    container = ax.containers[0]
    point = container.lines[0]
    segments = container.lines[2][0].get_segments()
    return point, np.array(segments)


def test_cox_forest_plot_draws_the_tidy_hazard_ratios(cox):
    t = cox.tidy()
    ax = cox.plot().axes[0]
    point, seg = forest_parts(ax)
    np.testing.assert_allclose(point.get_xdata(), t["exp_estimate"], rtol=1e-12)
    np.testing.assert_array_equal(point.get_ydata(), [2, 1, 0])
    np.testing.assert_allclose(seg[:, 0, 0], t["exp_conf_low"], rtol=1e-12)
    np.testing.assert_allclose(seg[:, 1, 0], t["exp_conf_high"], rtol=1e-12)
    np.testing.assert_array_equal(seg[:, 0, 1], [2, 1, 0])
    assert [lab.get_text() for lab in ax.get_yticklabels()] == ["x1", "x2", "x3"]
    ref = [ln for ln in ax.get_lines() if ln.get_gid() == "reference"][0]
    assert list(ref.get_xdata()) == [1, 1] and ax.get_xscale() == "log" and ax.get_xlabel() == "hazard ratio"


def test_forest_plot_on_the_log_scale_has_reference_zero(cox):
    t = cox.tidy()
    fig, ax = plt.subplots()
    assert forest_plot(t, exp=False, ax=ax) is fig
    point, seg = forest_parts(ax)
    np.testing.assert_allclose(point.get_xdata(), t["estimate"], rtol=1e-12)
    np.testing.assert_allclose(seg[:, 0, 0], t["conf_low"], rtol=1e-12)
    np.testing.assert_allclose(seg[:, 1, 0], t["conf_high"], rtol=1e-12)
    ref = [ln for ln in ax.get_lines() if ln.get_gid() == "reference"][0]
    assert list(ref.get_xdata()) == [0, 0] and ax.get_xscale() == "linear"


def test_forest_plot_bad_tables(cox):
    t = cox.tidy()
    with pytest.raises(ValueError, match="conf_high"):
        forest_plot(t.drop(columns="conf_high"), exp=False)
    no_exp = t.assign(exp_estimate=np.nan, exp_conf_low=np.nan, exp_conf_high=np.nan)
    with pytest.raises(ValueError, match="exp=False"):
        forest_plot(no_exp)
    with pytest.raises(ValueError, match="no rows"):
        forest_plot(t.iloc[:0])
    with pytest.raises(ValueError, match="not fitted"):
        CoxPH().plot()


# -- residuals ------------------------------------------------------------------------------------


def scatter_points(ax, gid="residuals"):
    coll = [c for c in ax.collections if c.get_gid() == gid][0]
    return coll.get_offsets()


@pytest.mark.parametrize("kind", ["martingale", "deviance"])
def test_residuals_against_linear_predictor(cox, kind):
    ax = plot_residuals(cox, RC, kind).axes[0]
    pts = scatter_points(ax)
    r = cox.residuals(RC, kind)
    lp = RC[["x1", "x2", "x3"]].to_numpy() @ cox.params_.to_numpy()
    np.testing.assert_allclose(pts[:, 0], lp, rtol=1e-12)
    np.testing.assert_allclose(pts[:, 1], r.to_numpy(), rtol=1e-12)
    smooth = [ln for ln in ax.get_lines() if ln.get_gid() == "lowess"][0]
    expect = lowess(r.to_numpy(), lp, frac=2 / 3)
    np.testing.assert_allclose(smooth.get_ydata(), expect[:, 1], rtol=1e-10)
    assert ax.get_xlabel() == "linear predictor" and ax.get_ylabel() == f"{kind} residual"


def test_residuals_against_a_covariate(cox):
    fig, ax = plt.subplots()
    assert plot_residuals(cox, RC, "martingale", covariate="x3", ax=ax) is fig
    pts = scatter_points(ax)
    np.testing.assert_array_equal(pts[:, 0], RC["x3"])
    np.testing.assert_allclose(pts[:, 1], cox.residuals(RC, "martingale"), rtol=1e-12)


def test_scaled_schoenfeld_against_time_per_term(cox):
    r = cox.residuals(RC, "scaled_schoenfeld")
    fig = plot_residuals(cox, RC, "scaled_schoenfeld", transform="identity")
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 3
    for ax, term in zip(axes, ["x1", "x2", "x3"]):
        pts = scatter_points(ax, f"residuals:{term}")
        np.testing.assert_array_equal(pts[:, 0], r.index.get_level_values("time"))
        np.testing.assert_allclose(pts[:, 1], r[term], rtol=1e-12)
        coef = [ln for ln in ax.get_lines() if ln.get_gid() == "coefficient"][0]
        assert coef.get_ydata()[0] == pytest.approx(cox.params_[term])
    # default km transform: x within [0, 1], one panel with covariate
    fig2, ax = plt.subplots()
    plot_residuals(cox, RC, "scaledsch", covariate="x2", ax=ax)
    pts = scatter_points(ax, "residuals:x2")
    assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= 1
    np.testing.assert_allclose(pts[:, 1], r["x2"], rtol=1e-12)


def test_residual_plot_bad_input(cox):
    with pytest.raises(ValueError, match="type: got 'score'"):
        plot_residuals(cox, RC, "score")
    with pytest.raises(ValueError, match="not fitted"):
        plot_residuals(CoxPH(), RC)
    with pytest.raises(TypeError, match="CoxPH"):
        plot_residuals(KaplanMeier(), RC)
    with pytest.raises(ValueError, match="not a column"):
        plot_residuals(cox, RC, covariate="nope")
    with pytest.raises(ValueError, match="not a term"):
        plot_residuals(cox, RC, "scaled_schoenfeld", covariate="w")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="covariate="):
        plot_residuals(cox, RC, "scaled_schoenfeld", ax=ax)


def test_importing_the_models_does_not_import_matplotlib():
    code = ("import sys, verzuimmodel.survival, verzuimmodel.survival_plots; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
