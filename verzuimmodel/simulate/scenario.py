"""Scenario: every parameter of the synthetic-cohort model, as frozen dataclasses.

A :class:`Scenario` groups the parameters by ingredient of the data-generating process
(see :func:`verzuimmodel.simulate`). Scenarios round-trip through TOML::

    scen = Scenario.from_toml("my_region.toml")
    scen.to_toml("copy.toml")
    scen2 = dataclasses.replace(scen, approach=dataclasses.replace(scen.approach, design="parallel"))

All rates are per full school year (``school_days`` days enrolled) unless stated; hazard
parameters are per day. Effects are on the log scale unless the name says ``_rate_ratio`` or
``_hr``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import tomli_w

__all__ = [
    "Scenario",
    "Population",
    "Variation",
    "Measure",
    "Absence",
    "Recording",
    "Episodes",
    "Intervention",
    "Approach",
]

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
"""The TOML scenarios shipped with the package."""

Design = Literal["none", "parallel", "stepped_wedge", "staggered", "observational"]


@dataclass(frozen=True)
class Population:
    """Regions, schools and pupils.

    PO school sizes (pupils in groups 1-8) are drawn from the CBS size bands
    ``po_size_band_edges`` with weights ``po_size_band_weights`` (uniform within a band) and,
    if ``n_po_pupils`` is set, rescaled so that the PO schools hold that many pupils. One grade
    holds one eighth of a school; ``n_cohorts`` consecutive grade cohorts (the school year in
    which they are in group 3, from ``first_cohort``) are followed from group 3 to VO year 4,
    to ``followup_end`` or until they move away (rate ``move_rate`` per year).

    Each PO school sends its pupils to the VO schools of its region with probabilities drawn
    from a Dirichlet(``feeder_concentration``) distribution: small values make a PO school feed
    few VO schools; PO and VO school effects are therefore cross-classified, not nested.
    """

    n_regions: int = 1
    n_po_schools: int = 40
    sbo_share: float = 0.04
    sbo_mean_size: float = 120.0
    n_vo_schools: int = 8
    n_po_pupils: int | None = None
    po_size_band_edges: tuple[float, ...] = (20.0, 100.0, 200.0, 500.0, 1000.0, 1400.0)
    po_size_band_weights: tuple[float, ...] = (1060.0, 1958.0, 2778.0, 257.0, 4.0)
    feeder_concentration: float = 0.4
    first_cohort: int = 2010
    n_cohorts: int = 8
    followup_end: str = "2026-07-31"
    move_rate: float = 0.015
    p_female: float = 0.49
    p_disadvantaged: float = 0.11
    p_chronic_illness: float = 0.12
    p_special_needs: float = 0.03
    vmbo_share: float = 0.5
    havo_share: float = 0.25


@dataclass(frozen=True)
class Variation:
    """Latent variation shared by all absence measures (log-rate scale).

    ``u`` (PO) and ``v = tracking_rho * u + sqrt(1 - tracking_rho^2) * e`` (VO) are a pupil's
    standard-normal absence propensity; each measure loads on it. ``a_s ~ N(0, sd_po_school^2)``
    and ``b_t ~ N(0, sd_vo_school^2)`` are PO and VO school effects; the PO school keeps weight
    ``po_school_carryover`` in VO. ``w_iy ~ N(0, sd_year^2)`` is a pupil-year shock shared by
    the measures of that year.

    ``school_sampling`` says how school-level draws (effects, frailties, disadvantage shares) are
    made within a region: ``iid`` (independent) or ``stratified`` (Latin hypercube: each school
    keeps exactly the same marginal distribution, but a region's schools spread evenly over it,
    so a region of a few schools is a typical one). Use ``iid`` when the variation between
    regions matters, e.g. when diagnosing a design's cluster-level variance.
    """

    tracking_rho: float = 0.9
    sd_po_school: float = 0.35
    sd_vo_school: float = 0.35
    po_school_carryover: float = 0.5
    sd_year: float = 0.15
    school_sampling: Literal["iid", "stratified"] = "iid"


@dataclass(frozen=True)
class Measure:
    """Negative binomial model of one yearly absence count.

    ``log mu = log(po_rate or vo_rate) + grade_slope * (grade index) + loading * propensity
    + sum of covariate effects + school effects + year shock + log(enrolled / school_days)``,
    ``count ~ Poisson(mu * G)``, ``G ~ Gamma(dispersion, 1 / dispersion)`` (NB2, theta = dispersion).
    """

    po_rate: float
    vo_rate: float
    grade_slope: float = 0.0
    loading: float = 0.6
    dispersion: float = 2.0
    female: float = 0.0
    disadvantaged: float = 0.0
    chronic_illness: float = 0.0
    special_needs: float = 0.0
    vmbo: float = 0.0


@dataclass(frozen=True)
class Absence:
    """Yearly absence by type.

    Sick days are built from sick reports: each report is long (more than 6 school days) with
    probability ``logistic(long_spell_logit + long_spell_chronic * chronic)``; a short spell
    lasts ``1 + Poisson(short_spell_mean - 1)`` days, a long one ``7 + Poisson(long_spell_mean - 7)``.
    """

    school_days: int = 190
    sick_reports: Measure = field(default_factory=lambda: Measure(
        po_rate=1.1, vo_rate=1.3, grade_slope=0.0, loading=1.0, dispersion=8.0, female=0.1,
        chronic_illness=0.5, special_needs=0.45, vmbo=0.35))
    late_arrivals: Measure = field(default_factory=lambda: Measure(
        po_rate=2.0, vo_rate=5.0, grade_slope=0.05, loading=0.6, dispersion=1.0, disadvantaged=0.3, vmbo=0.3))
    luxury_days: Measure = field(default_factory=lambda: Measure(
        po_rate=0.4, vo_rate=0.2, loading=0.5, dispersion=0.3, disadvantaged=0.5))
    unexcused_hours: Measure = field(default_factory=lambda: Measure(
        po_rate=3.0, vo_rate=2.8, grade_slope=0.1, loading=1.3, dispersion=0.8, disadvantaged=0.4,
        special_needs=0.3, vmbo=0.4))
    short_spell_mean: float = 1.9
    long_spell_logit: float = -3.6
    long_spell_chronic: float = 1.0
    long_spell_mean: float = 10.0


@dataclass(frozen=True)
class Recording:
    """PO recording: a true PO count is thinned binomially by a detection probability.

    ``logit p = logit(base) + sd_school * z_s + approach_shift * 1[approach active at the school]``.
    VO recording is complete.
    """

    po_detection_sick: float = 0.85
    po_detection_unexcused: float = 0.65
    sd_school: float = 0.4
    approach_shift: float = 1.5


@dataclass(frozen=True)
class Episodes:
    """Long-term absence episodes and their competing outcomes.

    Onset: at most one new episode per pupil-year while not in an episode, with yearly rate
    ``onset_po`` or ``onset_vo * exp(grade_slope_vo * (VO year - 1))`` times
    ``exp(loading * propensity + covariates + school effect) * recurrence_rr^[earlier episode]``.
    Type: 5a with probability ``logistic(p5a_logit + p5a_chronic * chronic + p5a_special * special)``,
    else AV with probability ``p_av``, else LRV. An LRV episode is recorded once it has lasted
    ``lrv_min_days`` days (its duration is drawn given that).

    Duration: two competing latent times, return (own or other school, split
    ``own_school_share``) and non-return (work, specialist care, exemption, split
    ``nonreturn_shares``), each Weibull-type with shape ``shape`` (< 1: negative duration
    dependence) on time since the first day of absence::

        h_ret(t) = ret_scale * shape * t^(shape-1) * Z_school * exp(x'beta) * type_mult
                   * prod_j hr_j^1[t >= s_j]
        h_non(t) = non_scale * shape * t^(shape-1) * type_mult_non

    with school frailty ``Z ~ Gamma(1/frailty_variance, frailty_variance)`` (mean 1) of the
    school where the episode began and in-episode interventions ``j`` starting at ``s_j``.
    An episode ending in ``exemption`` is followed by a 5a episode from that day.
    """

    onset_po: float = 0.00045
    onset_vo: float = 0.0047
    grade_slope_vo: float = 0.25
    loading: float = 0.7
    disadvantaged: float = 0.5
    chronic_illness: float = 0.6
    special_needs: float = 0.6
    school_loading: float = 1.0
    recurrence_rr: float = 3.0
    p5a_logit: float = -2.05
    p5a_chronic: float = 1.2
    p5a_special: float = 1.0
    p_av: float = 0.2
    lrv_min_days: int = 28
    shape: float = 0.7
    ret_scale: float = 0.068
    non_scale: float = 0.012
    own_school_share: float = 0.6
    nonreturn_shares: tuple[float, float, float] = (0.1, 0.45, 0.45)
    av_return_mult: float = 0.5
    fiveA_return_mult: float = 0.06
    fiveA_nonreturn_mult: float = 0.0
    ret_disadvantaged: float = -0.2
    ret_chronic_illness: float = -0.3
    ret_special_needs: float = -0.2
    ret_vo: float = -0.2
    frailty_variance: float = 0.3


@dataclass(frozen=True)
class Intervention:
    """One in-episode intervention type.

    Offered to an LRV or AV episode with probability
    ``logistic(logit(uptake) + uptake_disadvantaged * dis + uptake_chronic * chronic)``; it would
    start ``delay ~ Gamma(delay_shape, delay_mean / delay_shape)`` days after the first day of
    absence and happens only if the episode is still running (and observed) then. From its start
    the return hazard is multiplied by ``hr`` (conditional on covariates and school frailty).
    """

    uptake: float
    delay_mean: float
    hr: float
    delay_shape: float = 3.0
    uptake_disadvantaged: float = 0.0
    uptake_chronic: float = 0.0


@dataclass(frozen=True)
class Approach:
    """The PO preventive approach: who adopts when, and what it does.

    Adoption (year of first school year with the approach, per PO school):

    - ``none``: nobody.
    - ``parallel``: a random ``share_treated`` of PO schools (stratified by region) from ``start_year``.
    - ``stepped_wedge``: all PO schools, in ``n_steps`` random equal groups from ``start_year + k``.
    - ``staggered``: ``pilot_schools`` random schools from ``start_year``, then ``wave_size`` more per
      year until ``share_treated``; the rest never.
    - ``observational``: from ``start_year``, with ``logit P = logit(share_treated) + confounding * z_s``
      where ``z_s`` is, by ``adoption_driver``, the school's (latent) absence effect ``a_s / sd``
      (``absence``: schools with more absence adopt more often) or its standardised share of
      disadvantaged pupils (``disadvantaged``: a characteristic the registry measures exactly).

    A pupil is *exposed* if the PO school had adopted by the pupil's group ``exposed_from_grade``.
    Effects: exposed pupils' VO unexcused-hours rate is multiplied by ``vo_unexcused_rate_ratio``
    (times ``exp(modifier_disadvantaged)`` if disadvantaged), VO sick reports by
    ``vo_sick_rate_ratio`` and VO episode onset by ``vo_episode_rate_ratio``. While active at a
    school, true PO unexcused absence, lateness and luxury absence are multiplied by
    ``po_true_rate_ratio`` and recording improves (see :class:`Recording`).
    """

    design: Design = "staggered"
    start_year: int = 2016
    share_treated: float = 0.5
    n_steps: int = 4
    pilot_schools: int = 12
    wave_size: int = 4
    confounding: float = 1.0
    adoption_driver: Literal["absence", "disadvantaged"] = "absence"
    exposed_from_grade: int = 7
    vo_unexcused_rate_ratio: float = 0.85
    vo_sick_rate_ratio: float = 1.0
    vo_episode_rate_ratio: float = 0.8
    modifier_disadvantaged: float = 0.0
    po_true_rate_ratio: float = 0.95


def _default_interventions() -> dict[str, Intervention]:
    return {
        "kernpartnerteam": Intervention(uptake=0.45, delay_mean=55.0, hr=1.5, uptake_disadvantaged=0.5),
        "verzuimcoach": Intervention(uptake=0.3, delay_mean=70.0, hr=1.25),
        "mazl": Intervention(uptake=0.08, delay_mean=40.0, hr=1.4, uptake_chronic=2.0),
    }


@dataclass(frozen=True)
class Scenario:
    """All parameters of a synthetic cohort. See :func:`verzuimmodel.simulate` for the model."""

    name: str = "default"
    population: Population = field(default_factory=Population)
    variation: Variation = field(default_factory=Variation)
    absence: Absence = field(default_factory=Absence)
    recording: Recording = field(default_factory=Recording)
    episodes: Episodes = field(default_factory=Episodes)
    interventions: dict[str, Intervention] = field(default_factory=_default_interventions)
    approach: Approach = field(default_factory=Approach)

    def __post_init__(self):
        _check(self)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> "Scenario":
        """One region: about 40 PO and 8 VO schools, calibrated (``scenarios/default.toml``)."""
        return cls.from_toml(SCENARIO_DIR / "default.toml")

    @classmethod
    def national(cls) -> "Scenario":
        """The Netherlands: 6,582 PO schools, 1,474,521 PO pupils (``scenarios/national.toml``)."""
        return cls.from_toml(SCENARIO_DIR / "national.toml")

    @classmethod
    def load(cls, spec: str | Path) -> "Scenario":
        """A shipped scenario by name (``default``, ``national``, ...) or a TOML file by path."""
        path = Path(spec)
        if path.suffix.lower() == ".toml" or path.exists():
            return cls.from_toml(path)
        return cls.named(str(spec))

    @classmethod
    def named(cls, name: str) -> "Scenario":
        """A scenario shipped with the package, by name (``default``, ``national``, ...)."""
        path = SCENARIO_DIR / f"{name}.toml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
            raise ValueError(f"unknown scenario '{name}'; expected one of {known} or a path to a .toml file")
        return cls.from_toml(path)

    @classmethod
    def from_dict(cls, data: dict) -> "Scenario":
        """Build from a nested dict (as read from TOML); unknown or mistyped keys raise ``ValueError``."""
        return _build(cls, data, "")

    @classmethod
    def from_toml(cls, path) -> "Scenario":
        """Read a scenario from a TOML file. Keys not given keep their default values."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"scenario file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"scenario file {path.name}: invalid TOML: {e}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        """Nested dict of all parameters (TOML-ready: no ``None`` values)."""
        return _to_dict(self)

    def to_toml(self, path=None) -> str:
        """Write the scenario as TOML to ``path`` (if given); return the TOML text."""
        text = tomli_w.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


# -- TOML <-> dataclasses ---------------------------------------------------------------------

def _to_dict(obj) -> dict:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            value = _to_dict(value)
        elif isinstance(value, dict):
            value = {k: _to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"scenario key '{where or cls.__name__}': expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"scenario key '{_join(where, unknown[0])}': unknown key; expected one of "
                         f"{', '.join(sorted(known))}")
    kwargs = {k: _convert(hints[k], v, _join(where, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - all fields have defaults
        raise ValueError(f"scenario key '{where}': {e}") from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value, where)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"scenario key '{where}': got {value!r}; expected one of {', '.join(map(str, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"scenario key '{where}': expected a table")
        return {k: _convert(args[1], v, _join(where, k)) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"scenario key '{where}': expected a list of numbers, got {value!r}")
        return tuple(_convert(float, v, where) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"scenario key '{where}': expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"scenario key '{where}': expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"scenario key '{where}': expected a string, got {value!r}")
        return value
    return value


# -- checks ----------------------------------------------------------------------------------

def _require(ok: bool, key: str, expected: str, value) -> None:
    if not ok:
        raise ValueError(f"scenario key '{key}': got {value!r}; expected {expected}")


def _check(s: Scenario) -> None:
    p = s.population
    _require(p.n_regions >= 1, "population.n_regions", "at least 1", p.n_regions)
    _require(p.n_po_schools >= p.n_regions, "population.n_po_schools", "at least one per region", p.n_po_schools)
    _require(p.n_vo_schools >= p.n_regions, "population.n_vo_schools", "at least one per region", p.n_vo_schools)
    _require(p.n_cohorts >= 1, "population.n_cohorts", "at least 1", p.n_cohorts)
    _require(p.n_po_pupils is None or p.n_po_pupils >= p.n_po_schools, "population.n_po_pupils",
             "at least one pupil per school", p.n_po_pupils)
    _require(len(p.po_size_band_edges) == len(p.po_size_band_weights) + 1, "population.po_size_band_edges",
             "one more edge than po_size_band_weights", p.po_size_band_edges)
    _require(all(a < b for a, b in zip(p.po_size_band_edges, p.po_size_band_edges[1:])) and
             p.po_size_band_edges[0] > 0, "population.po_size_band_edges", "increasing positive sizes",
             p.po_size_band_edges)
    for name in ("sbo_share", "move_rate", "p_female", "p_disadvantaged", "p_chronic_illness", "p_special_needs",
                 "vmbo_share", "havo_share"):
        v = getattr(p, name)
        _require(0 <= v <= 1, f"population.{name}", "a probability in [0, 1]", v)
    _require(p.vmbo_share + p.havo_share <= 1, "population.havo_share", "vmbo_share + havo_share <= 1", p.havo_share)
    try:
        import numpy as np
        np.datetime64(p.followup_end, "D")
    except ValueError:
        _require(False, "population.followup_end", "a date YYYY-MM-DD", p.followup_end)
    v = s.variation
    _require(-1 <= v.tracking_rho <= 1, "variation.tracking_rho", "a correlation in [-1, 1]", v.tracking_rho)
    for name in ("sd_po_school", "sd_vo_school", "sd_year"):
        _require(getattr(v, name) >= 0, f"variation.{name}", "a standard deviation >= 0", getattr(v, name))
    a = s.absence
    _require(a.school_days > 0, "absence.school_days", "a positive number of days", a.school_days)
    for name in ("sick_reports", "late_arrivals", "luxury_days", "unexcused_hours"):
        m = getattr(a, name)
        _require(m.po_rate > 0 and m.vo_rate > 0, f"absence.{name}.po_rate", "positive rates", (m.po_rate, m.vo_rate))
        _require(m.dispersion > 0, f"absence.{name}.dispersion", "a positive NB theta", m.dispersion)
    _require(a.short_spell_mean >= 1, "absence.short_spell_mean", ">= 1 day", a.short_spell_mean)
    _require(a.long_spell_mean >= 7, "absence.long_spell_mean", ">= 7 days", a.long_spell_mean)
    r = s.recording
    for name in ("po_detection_sick", "po_detection_unexcused"):
        _require(0 < getattr(r, name) <= 1, f"recording.{name}", "a probability in (0, 1]", getattr(r, name))
    e = s.episodes
    _require(0 < e.shape, "episodes.shape", "a positive Weibull shape", e.shape)
    _require(e.ret_scale > 0 and e.non_scale >= 0, "episodes.ret_scale", "positive hazard scales",
             (e.ret_scale, e.non_scale))
    _require(e.frailty_variance >= 0, "episodes.frailty_variance", ">= 0", e.frailty_variance)
    _require(len(e.nonreturn_shares) == 3 and abs(sum(e.nonreturn_shares) - 1) < 1e-9 and
             min(e.nonreturn_shares) >= 0, "episodes.nonreturn_shares",
             "three shares (work, specialist_care, exemption) summing to 1", e.nonreturn_shares)
    for name in ("own_school_share", "p_av"):
        _require(0 <= getattr(e, name) <= 1, f"episodes.{name}", "a probability in [0, 1]", getattr(e, name))
    from ..schema import INTERVENTION_TYPES
    for name, iv in s.interventions.items():
        _require(name in INTERVENTION_TYPES, f"interventions.{name}",
                 "an intervention type: " + ", ".join(INTERVENTION_TYPES), name)
        _require(0 <= iv.uptake <= 1, f"interventions.{name}.uptake", "a probability in [0, 1]", iv.uptake)
        _require(iv.hr > 0, f"interventions.{name}.hr", "a positive hazard ratio", iv.hr)
        _require(iv.delay_mean > 0 and iv.delay_shape > 0, f"interventions.{name}.delay_mean",
                 "positive delay mean and shape", (iv.delay_mean, iv.delay_shape))
    ap = s.approach
    _require(0 <= ap.share_treated <= 1, "approach.share_treated", "a share in [0, 1]", ap.share_treated)
    _require(ap.n_steps >= 1, "approach.n_steps", "at least 1", ap.n_steps)
    _require(3 <= ap.exposed_from_grade <= 8, "approach.exposed_from_grade", "a PO group 3-8", ap.exposed_from_grade)
    for name in ("vo_unexcused_rate_ratio", "vo_sick_rate_ratio", "vo_episode_rate_ratio", "po_true_rate_ratio"):
        _require(getattr(ap, name) > 0, f"approach.{name}", "a positive rate ratio", getattr(ap, name))
