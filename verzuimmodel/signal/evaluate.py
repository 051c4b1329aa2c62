"""Compare risk models with the rule-based signals on every measure, overall and by group.

The flow: :func:`~verzuimmodel.signal.features` (one row per pupil) → :func:`predictions`
(every labelled test pupil's risk and flag under each validation scheme, for each model and
rule) → :func:`performance` (the tidy table with bootstrap intervals). :func:`evaluate` does
all three; :func:`fit_model` fits one model on all labelled pupils and keeps its validated
performance for the model card.

Rules as risk scores
--------------------
A rule flags or does not flag. Its *flag* gives sensitivity, PPV and alert rate at the rule's own
alert rate, and AUC (of a 0/1 score). For the Brier score and calibration the rule is read as a
risk score the way a model is: the event rate among flagged and among unflagged pupils in the
*training* part of each split, so rules and models are scored on the same test pupils with
risks estimated without them.

Bootstrap
---------
Percentile intervals from ``n_boot`` replicates that resample PO schools with replacement
(``bootstrap="school"``, the default, for pupils clustered in schools) or pupils. A replicate
reweights the test pupils (a school drawn twice counts twice); models' alerts (top share or
number of each cohort) are recomputed in every replicate; the same replicates serve every
signal, so the signals are compared on the same resamples. The intervals reflect the sampling
of test pupils and schools, not the refitting of the models. Replicates in which a measure is
undefined (e.g. no events in a group) are left out; with fewer than half defined the interval
is missing.

Nothing here decides about a pupil: the results describe how well signals sort groups of
pupils, for planning and for comparing approaches.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import logit

from ..cohort import Cohort
from .features import FeatureConfig, features
from .metrics import EPS, Alert, _logistic, alert_flags, alert_order, calibration_curve
from .models import GradientBoosting, GroupedCV, LogisticSpline, ModelSpec, SignalModel, TemporalSplit
from .rules import RULES, Rule, RuleWindow

__all__ = ["SignalConfig", "GROUPS", "METRICS", "TIDY_COLUMNS", "predictions", "performance", "evaluate",
           "calibration_table", "fit_model", "FittedSignal"]

GROUPS: dict[str, tuple[str, int] | None] = {
    "all": None,
    "girls": ("female", 1),
    "boys": ("female", 0),
    "disadvantaged": ("disadvantaged", 1),
    "not_disadvantaged": ("disadvantaged", 0),
    "special_needs": ("special_needs", 1),
    "no_special_needs": ("special_needs", 0),
    "sbo": ("sbo", 1),
}
"""Groups the measures are broken down by: name → (0/1 column of the analysis table, value); None = all."""

METRICS = ("auc", "brier", "calibration_intercept", "calibration_slope", "sensitivity", "ppv", "alert_rate")
"""The measures, in the order of the tidy table."""

TIDY_COLUMNS = ["signal", "metric", "group", "value", "conf_low", "conf_high", "validation", "kind", "n", "n_events"]
"""Columns of :func:`evaluate`: the six of the design, then the validation scheme, ``model`` or
``rule``, and the test pupils and events in the group."""

_GROUP_COLUMNS = sorted({g[0] for g in GROUPS.values() if g is not None})
PREDICTION_COLUMNS = ["validation", "signal", "kind", "pupil_id", "po_school_id", "cohort", "event", "risk",
                      "flag", *_GROUP_COLUMNS]
"""Columns of :func:`predictions`."""


@dataclass(frozen=True)
class SignalConfig:
    """What :func:`evaluate` compares and how.

    Parameters
    ----------
    models : tuple of ModelSpec
        Risk models (default: :class:`~verzuimmodel.signal.models.LogisticSpline` and
        :class:`~verzuimmodel.signal.models.GradientBoosting`).
    rules : tuple of Rule
        Rule-based baselines (default: every rule in :data:`~verzuimmodel.signal.rules.RULES`).
    rule_window : {"all_po", "groups_7_8"}
        PO years the rules look at.
    validations : tuple
        Validation schemes (default: :class:`GroupedCV` by PO school and :class:`TemporalSplit`).
    alert : Alert
        Which pupils a model flags (default: the top 5% of each cohort).
    n_boot : int
        Bootstrap replicates (0: no intervals).
    bootstrap : {"school", "pupil"}
        The resampled unit.
    level : float
        Level of the percentile intervals.
    groups : tuple of str
        Keys of :data:`GROUPS`.
    features : FeatureConfig
        Label and feature definitions.
    n_threads : int or None
        Threads while fitting (see :class:`~verzuimmodel.signal.models.SignalModel`).
    """

    models: tuple[Any, ...] = (LogisticSpline(), GradientBoosting())
    rules: tuple[Rule, ...] = tuple(RULES.values())
    rule_window: RuleWindow = "all_po"
    validations: tuple[Any, ...] = (GroupedCV(), TemporalSplit())
    alert: Alert = Alert()
    n_boot: int = 200
    bootstrap: Literal["school", "pupil"] = "school"
    level: float = 0.95
    groups: tuple[str, ...] = tuple(GROUPS)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    n_threads: int | None = 1

    def __post_init__(self):
        names = [m.name for m in self.models] + [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"signal names must be unique, got {names}")
        if not names:
            raise ValueError("nothing to evaluate: no models and no rules")
        if len({v.name for v in self.validations}) != len(self.validations) or not self.validations:
            raise ValueError("give at least one validation scheme, each with its own name")
        if self.n_boot < 0:
            raise ValueError(f"n_boot must be >= 0, got {self.n_boot}")
        if self.bootstrap not in ("school", "pupil"):
            raise ValueError(f"bootstrap must be 'school' or 'pupil', got {self.bootstrap!r}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie between 0 and 1, got {self.level}")
        bad = [g for g in self.groups if g not in GROUPS]
        if bad:
            raise ValueError(f"unknown group(s) {bad}; expected keys of GROUPS: {list(GROUPS)}")
        if not isinstance(self.alert, Alert):
            raise TypeError(f"alert must be an Alert, got {type(self.alert).__name__}")


def _config(config: SignalConfig | None, overrides: dict) -> SignalConfig:
    config = config or SignalConfig()
    return dataclasses.replace(config, **overrides) if overrides else config


def _streams(seed: int) -> tuple[int, np.random.SeedSequence]:
    """A random_state for the models and a seed sequence for the bootstrap, both from ``seed``."""
    models, boot = np.random.SeedSequence(seed).spawn(2)
    return int(models.generate_state(1)[0]), boot


def labelled_table(cohort: Cohort, config: SignalConfig) -> pd.DataFrame:
    """The labelled pupils of :func:`~verzuimmodel.signal.features`, with ``event`` as int."""
    data = features(cohort, config.features, rules={r.name: r for r in config.rules}, rule_window=config.rule_window)
    lab = data[data["labelled"]].reset_index(drop=True)
    if lab.empty:
        raise ValueError("no labelled pupils: none is followed into VO year "
                         f"{config.features.min_vo_year} (see FeatureConfig.min_vo_year)")
    lab["event"] = lab["event"].astype(int)
    if lab["event"].nunique() < 2:
        raise ValueError("the labelled pupils hold only one class: no VO long-term absence, or only that")
    n_events, n_schools = int(lab["event"].sum()), int(lab["po_school_id"].nunique()) if "po_school_id" in lab else 0
    if n_events < MIN_EVENTS or (n_schools and n_schools < MIN_SCHOOLS):
        raise ValueError(f"cohort too small for a stable model: {n_events} pupils with long-term absence in VO among "
                         f"{len(lab):,} labelled pupils from {n_schools} PO schools (need at least {MIN_EVENTS} "
                         f"events and {MIN_SCHOOLS} schools); its measures would be noise")
    return lab


MIN_EVENTS = 40
"""Fewest labelled events (VO long-term absence) for :func:`evaluate` and :func:`fit_model`."""
MIN_SCHOOLS = 10
"""Fewest PO schools (grouped cross-validation needs schools to leave out)."""


def predictions(cohort: Cohort, config: SignalConfig | None = None, *, seed: int = 0,
                data: pd.DataFrame | None = None, **overrides) -> pd.DataFrame:
    """Risk and flag of every labelled test pupil, for each validation scheme and signal.

    Parameters
    ----------
    cohort : Cohort
    config : SignalConfig, optional
    seed : int
        Seeds the models (the default models are deterministic).
    data : pandas.DataFrame, optional
        A ready labelled table (as built by :func:`labelled_table`), to skip building it.
    **overrides
        Fields of :class:`SignalConfig` to replace (an unknown name raises ``TypeError``).

    Returns
    -------
    pandas.DataFrame
        :data:`PREDICTION_COLUMNS`: one row per validation scheme, signal and test pupil. ``risk``
        is the out-of-sample risk (a model's prediction; for a rule the training event rate of
        its flag level); ``flag`` is 1 when the signal flags the pupil (a model: the
        :class:`Alert` applied to the pooled test pupils of the scheme, by cohort).
    """
    config = _config(config, overrides)
    lab = labelled_table(cohort, config) if data is None else data
    missing = [f"rule_{r.name}" for r in config.rules if f"rule_{r.name}" not in lab.columns]
    if missing:
        raise ValueError(f"the data lack the rule column(s) {missing}; build them with labelled_table(cohort, config)")
    random_state, _ = _streams(seed)
    groups = _GROUP_COLUMNS
    parts = []
    for v in config.validations:
        risks = {m.name: np.full(len(lab), np.nan) for m in config.models}
        risks.update({r.name: np.full(len(lab), np.nan) for r in config.rules})
        tested = np.zeros(len(lab), dtype=bool)
        for train, test in v.split(lab):
            tested[test] = True
            for m in config.models:
                fitted = SignalModel(m, random_state=random_state, n_threads=config.n_threads).fit(lab.iloc[train])
                risks[m.name][test] = fitted.predict_risk(lab.iloc[test])
            y_train = lab["event"].to_numpy()[train]
            for r in config.rules:
                flag = lab[f"rule_{r.name}"].to_numpy()
                risks[r.name][test] = _rule_risk(flag[train], y_train, flag[test])
        test = lab[tested]
        base = test[["pupil_id", "po_school_id", "cohort", "event", *groups]]
        for m in config.models:
            risk = risks[m.name][tested]
            flag = alert_flags(risk, test["cohort"].to_numpy(), config.alert).astype(int)
            parts.append(base.assign(validation=v.name, signal=m.name, kind="model", risk=risk, flag=flag))
        for r in config.rules:
            parts.append(base.assign(validation=v.name, signal=r.name, kind="rule", risk=risks[r.name][tested],
                                     flag=test[f"rule_{r.name}"].to_numpy().astype(int)))
    return pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS]


def _rule_risk(flag_train: np.ndarray, y_train: np.ndarray, flag_test: np.ndarray) -> np.ndarray:
    """A rule as a risk: the training event rate among flagged / unflagged (the overall rate if a level is empty)."""
    overall = y_train.mean()
    rate = {}
    for level in (0, 1):
        sel = flag_train == level
        rate[level] = y_train[sel].mean() if sel.any() else overall
    return np.where(flag_test == 1, rate[1], rate[0])


class _Signal:
    """One signal's test rows, with what the bootstrap reuses (ranks, alert order, logits)."""

    def __init__(self, rows: pd.DataFrame, alert: Alert):
        self.kind = rows["kind"].iloc[0]
        self.y = rows["event"].to_numpy(dtype=float)
        self.risk = rows["risk"].to_numpy(dtype=float)
        self.flag = rows["flag"].to_numpy(dtype=float)
        self.cohort = rows["cohort"].to_numpy()
        self.ranks = np.unique(self.risk if self.kind == "model" else self.flag, return_inverse=True)[1]
        self.size = int(self.ranks.max()) + 1
        self.lp = logit(np.clip(self.risk, EPS, 1 - EPS))
        u, inv = np.unique(self.lp, return_inverse=True)
        self.pooled = (u, inv) if len(u) <= len(self.lp) // 2 else None
        self.order = alert_order(self.risk, self.cohort) if self.kind == "model" else None
        self.alert = alert

    def measures(self, w: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
        """Every metric (columns, in :data:`METRICS` order) for every group mask (rows), under weights ``w``."""
        if self.kind == "model":
            share = alert_flags(self.risk, self.cohort, self.alert, w, order=self.order)
        else:
            share = self.flag
        out = np.full((len(masks), len(METRICS)), np.nan)
        y = self.y
        for i, mask in enumerate(masks):
            wg = w * mask
            n = wg.sum()
            events = np.sum(wg * y)
            if n <= 0:
                continue
            fw = share * wg
            flagged = fw.sum()
            out[i, 0] = _auc(y, wg, self.ranks, self.size)
            out[i, 1] = np.sum(wg * (self.risk - y) ** 2) / n
            out[i, 2], out[i, 3] = _calibration(y, wg, self.lp, self.pooled)
            out[i, 4] = np.sum(fw * y) / events if events > 0 else np.nan
            out[i, 5] = np.sum(fw * y) / flagged if flagged > 0 else np.nan
            out[i, 6] = flagged / n
        return out


def _auc(y, w, ranks, size) -> float:
    pos = np.bincount(ranks, w * y, minlength=size)
    neg = np.bincount(ranks, w * (1.0 - y), minlength=size)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos <= 0 or n_neg <= 0:
        return np.nan
    return float(np.sum(pos * (np.cumsum(neg) - 0.5 * neg)) / (n_pos * n_neg))


def _calibration(y, w, lp, pooled: tuple[np.ndarray, np.ndarray] | None) -> tuple[float, float]:
    """Calibration intercept and slope (see :func:`verzuimmodel.signal.metrics.recalibration`), fast path.

    With ``pooled = (unique logits, inverse)`` the rows of equal logit are pooled first (a rule's
    risk takes a few values only), which leaves the likelihood unchanged.
    """
    if pooled is not None:
        u, inv = pooled
        events = np.bincount(inv, w * y, minlength=len(u))
        others = np.bincount(inv, w * (1.0 - y), minlength=len(u))
        y, w, lp = np.r_[np.ones(len(u)), np.zeros(len(u))], np.r_[events, others], np.r_[u, u]
    a = _logistic(None, y, w, lp)
    b = _logistic(lp, y, w, np.zeros_like(lp), start=(0.0, 1.0))
    return (float(a[0][0]) if a is not None else np.nan), (float(b[0][1]) if b is not None else np.nan)


def performance(preds: pd.DataFrame, config: SignalConfig | None = None, *, seed: int = 0,
                **overrides) -> pd.DataFrame:
    """The tidy comparison table from :func:`predictions`, with bootstrap intervals.

    Parameters
    ----------
    preds : pandas.DataFrame
        Output of :func:`predictions`.
    config : SignalConfig, optional
        ``alert``, ``n_boot``, ``bootstrap``, ``level`` and ``groups`` are used.
    seed : int
        Seeds the bootstrap (each validation scheme gets its own stream).
    **overrides
        Fields of :class:`SignalConfig` to replace.

    Returns
    -------
    pandas.DataFrame
        :data:`TIDY_COLUMNS`, one row per validation scheme, signal, metric and group.
    """
    config = _config(config, overrides)
    _, boot = _streams(seed)
    rows = []
    validations = list(dict.fromkeys(preds["validation"]))
    for v, stream in zip(validations, boot.spawn(len(validations))):
        block = preds[preds["validation"] == v]
        signals = list(dict.fromkeys(block["signal"]))
        parts = {s: block[block["signal"] == s].sort_values("pupil_id", kind="stable") for s in signals}
        first = parts[signals[0]]
        for s in signals[1:]:
            if not np.array_equal(parts[s]["pupil_id"].to_numpy(), first["pupil_id"].to_numpy()):
                raise ValueError(f"signals of validation '{v}' are not scored on the same pupils")
        y = first["event"].to_numpy(dtype=float)
        masks = [np.ones(len(first)) if GROUPS[g] is None
                 else (first[GROUPS[g][0]].to_numpy() == GROUPS[g][1]).astype(float) for g in config.groups]
        n = [int(m.sum()) for m in masks]
        n_events = [int((m * y).sum()) for m in masks]
        units = first["po_school_id"].to_numpy() if config.bootstrap == "school" else first["pupil_id"].to_numpy()
        _, unit = np.unique(units, return_inverse=True)
        n_units = int(unit.max()) + 1
        rng = np.random.default_rng(stream)
        draws = [np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)[unit].astype(float)
                 for _ in range(config.n_boot)]
        ones = np.ones(len(first))
        for s in signals:
            sig = _Signal(parts[s], config.alert)
            point = sig.measures(ones, masks)
            if config.n_boot:
                reps = np.stack([sig.measures(w, masks) for w in draws])
                low, high = _percentile(reps, config.level)
            else:
                low = high = np.full_like(point, np.nan)
            for gi, g in enumerate(config.groups):
                for mi, metric in enumerate(METRICS):
                    rows.append((s, metric, g, point[gi, mi], low[gi, mi], high[gi, mi], v, sig.kind,
                                 n[gi], n_events[gi]))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def _percentile(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring undefined replicates (NaN if fewer than half are defined)."""
    finite = np.isfinite(reps)
    enough = finite.mean(axis=0) >= 0.5
    alpha = (1 - level) / 2
    safe = np.where(finite, reps, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN cells: handled below
        low = np.nanquantile(safe, alpha, axis=0)
        high = np.nanquantile(safe, 1 - alpha, axis=0)
    return np.where(enough, low, np.nan), np.where(enough, high, np.nan)


def evaluate(cohort: Cohort, config: SignalConfig | None = None, *, seed: int = 0, **overrides) -> pd.DataFrame:
    """Compare the risk models with the rule-based signals on every measure, overall and by group.

    Parameters
    ----------
    cohort : Cohort
        Simulated or real; the label is long-term absence (LRV or AV) starting in VO among
        pupils followed into VO year 2 (see :mod:`verzuimmodel.signal.features`).
    config : SignalConfig, optional
        Models, rules, validation schemes, alert, bootstrap and groups (defaults: see
        :class:`SignalConfig`).
    seed : int
        The only source of randomness (models and bootstrap).
    **overrides
        Fields of :class:`SignalConfig` to replace, e.g. ``n_boot=50`` or
        ``alert=Alert("count", 40)``.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``signal`` (model or rule name), ``metric`` (:data:`METRICS`), ``group``
        (:data:`GROUPS`), ``value``, ``conf_low``, ``conf_high`` (percentile bootstrap), then
        ``validation`` (``grouped_cv`` or ``temporal``), ``kind`` (``model`` or ``rule``), ``n`` and
        ``n_events`` (test pupils and events in the group).

    Examples
    --------
    >>> import verzuimmodel as vm
    >>> cohort = vm.simulate(vm.Scenario.default(), seed=1)
    >>> table = vm.signal.evaluate(cohort, n_boot=200, seed=1)      # doctest: +SKIP
    >>> table.query("group == 'all' and metric == 'auc'")               # doctest: +SKIP
    """
    config = _config(config, overrides)
    preds = predictions(cohort, config, seed=seed)
    return performance(preds, config, seed=seed)


def calibration_table(preds: pd.DataFrame, n_bins: int = 10, level: float = 0.95) -> pd.DataFrame:
    """Observed against predicted risk in bins, per validation scheme and model (for the calibration plot).

    Parameters
    ----------
    preds : pandas.DataFrame
        Output of :func:`predictions`.
    n_bins : int
    level : float
        Level of the Wilson intervals of the observed rates.

    Returns
    -------
    pandas.DataFrame
        ``validation, signal, kind, bin, n, n_events, mean_predicted, observed, conf_low, conf_high``.
    """
    out = []
    for (v, s), block in preds.groupby(["validation", "signal"], sort=False):
        curve = calibration_curve(block["event"].to_numpy(), block["risk"].to_numpy(), n_bins=n_bins, level=level)
        curve.insert(0, "kind", block["kind"].iloc[0])
        curve.insert(0, "signal", s)
        curve.insert(0, "validation", v)
        out.append(curve)
    return pd.concat(out, ignore_index=True)


@dataclass(frozen=True)
class FittedSignal:
    """A risk model fitted on every labelled pupil, with its validated performance.

    Attributes
    ----------
    model : SignalModel
        Fitted on all labelled pupils (to apply to new pupils).
    config : SignalConfig
        How it was validated and compared (its ``models`` hold this model only).
    performance : pandas.DataFrame
        The tidy table of :func:`evaluate` for this model and the rules.
    calibration : pandas.DataFrame
        :func:`calibration_table` of the out-of-sample risks.
    data : dict
        What it was fitted on (counts, cohorts, label definition, whether simulated).
    seed : int
    """

    model: SignalModel
    config: SignalConfig
    performance: pd.DataFrame
    calibration: pd.DataFrame
    data: dict
    seed: int

    @property
    def name(self) -> str:
        return self.model.name

    def tidy(self) -> pd.DataFrame:
        """The performance table (:data:`TIDY_COLUMNS`)."""
        return self.performance

    def predict_risk(self, data: pd.DataFrame) -> np.ndarray:
        """Predicted risks for rows of :func:`~verzuimmodel.signal.features`."""
        return self.model.predict_risk(data)

    def model_card(self) -> str:
        """The model card (Markdown): data, intended use, performance overall and by group, limits."""
        from .modelcard import model_card

        return model_card(self)

    def write_model_card(self, path: str | Path) -> Path:
        """Write :meth:`model_card` to ``path`` (atomically: a temporary file renamed into place)."""
        from .modelcard import write_text_atomic

        return write_text_atomic(path, self.model_card())


def fit_model(cohort: Cohort, model: str | ModelSpec = "logistic_spline", config: SignalConfig | None = None, *,
              seed: int = 0, model_card_path: str | Path | None = None, **overrides) -> FittedSignal:
    """Fit a risk model on all labelled pupils and validate it against the rules; write its model card.

    Parameters
    ----------
    cohort : Cohort
    model : str or ModelSpec
        ``"logistic_spline"``, ``"gradient_boosting"`` or a specification.
    config : SignalConfig, optional
        Validation, rules, alert, bootstrap (its ``models`` are replaced by ``model``).
    seed : int
    model_card_path : str or Path, optional
        Also write the model card (Markdown) to this file.
    **overrides
        Fields of :class:`SignalConfig` to replace.

    Returns
    -------
    FittedSignal
        ``.model_card()`` gives the Markdown model card, ``.write_model_card(path)`` writes it.
    """
    from .models import MODELS

    spec = MODELS[model] if isinstance(model, str) and model in MODELS else model
    if isinstance(spec, str):
        raise ValueError(f"unknown model '{model}'; expected one of {', '.join(MODELS)} or a ModelSpec")
    config = dataclasses.replace(_config(config, overrides), models=(spec,))
    lab = labelled_table(cohort, config)
    random_state, _ = _streams(seed)
    fitted = SignalModel(spec, random_state=random_state, n_threads=config.n_threads).fit(lab)
    preds = predictions(cohort, config, seed=seed, data=lab)
    perf = performance(preds, config, seed=seed)
    calib = calibration_table(preds[preds["kind"] == "model"])
    all_pupils = len(features(cohort, config.features, rules={}, rule_window=config.rule_window))
    scen = getattr(cohort, "scenario", None)
    data = {
        "simulated": bool(cohort.truth),
        "scenario": getattr(scen, "name", None) if scen is not None else None,
        "cohort_seed": cohort.seed,
        "n_pupils": all_pupils,
        "n_labelled": int(len(lab)),
        "n_events": int(lab["event"].sum()),
        "cohorts": (int(lab["cohort"].min()), int(lab["cohort"].max())),
        "n_po_schools": int(lab["po_school_id"].nunique()),
        "events_by_cohort": lab.groupby("cohort")["event"].agg(["size", "sum"]).astype(int).reset_index()
                               .rename(columns={"size": "n", "sum": "events"}),
        "validation_descriptions": {v.name: v.describe() for v in config.validations},
    }
    result = FittedSignal(model=fitted, config=config, performance=perf, calibration=calib, data=data, seed=seed)
    if model_card_path is not None:
        result.write_model_card(model_card_path)
    return result
