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

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import tomli_w

from ._toml import build, to_dict

__all__ = [
    "Scenario",
    "Population",
    "Variation",
    "Measure",
    "Absence",
    "Recording",
    "Episodes",
    "Intervention",
    "Severity",
    "Approach",
    "Calendar",
    "Consult",
    "Estimands",
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

    VO is followed for ``vo_years`` years: 4 (default), up to 6 to include the 16-18-year-olds
    under kwalificatieplicht (upper VO and MBO, counted together as VO years 5-6).

    Partial exposure: in each PO year from group 4 on a pupil changes to another PO school of the
    region with probability ``po_switch_rate`` (at most once). The pupils table records the last
    PO school (group 8); the absence table the school of each year.

    ``mode``:

    - ``cohorts`` (default): a closed panel of ``n_cohorts`` grade cohorts from ``first_cohort``.
    - ``open``: the region as a leerplicht/RMC monitor sees it. Every school year from
      ``first_cohort`` to ``followup_end`` has all grades filled (the cohorts that are in group 3
      in ``first_cohort - grades + 1`` ... ``followup_end``; ``n_cohorts`` is not used), each with a
      new intake; a pupil who moves away is replaced by a pupil of the same cohort moving into a
      random school of the region that day. Histories are simulated from group 3, but only what
      happens from ``first_cohort`` on (or from moving in) is observed, so the pupils in the
      first observed year carry their earlier episodes (recurrence) and the stock of long
      absence is stationary.
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
    vo_years: int = 4
    po_switch_rate: float = 0.0
    mode: Literal["cohorts", "open"] = "cohorts"


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
class Severity:
    r"""Unmeasured episode severity: the confounder real evaluations cannot see.

    Each LRV/AV/5a episode draws :math:`S \sim N(0, 1)`, recorded nowhere. It multiplies the return
    hazard by :math:`\exp(-\sigma S - \sigma^2/2)` (``sd`` :math:`= \sigma`; mean multiplier 1, so
    severe episodes last longer), shifts the log odds of referral to intervention ``j`` by
    ``uptake_severity_j * S`` and its delay by the factor ``exp(-timing_severity_j * S)`` (see
    :class:`Intervention`), and, from the day the episode is known (day 28 for LRV), adds loss to
    follow-up with hazard ``loss_rate / 365 * exp(loss * S)`` per day: the episode is censored
    then and the pupil leaves the data (moved away unannounced), so censoring is informative
    when ``loss != 0``. ``loss_rate = 0`` and ``sd = 0`` (and no intervention using ``S``) leave
    the model as without severity.

    ``recorded = true`` writes :math:`S` to the episodes table (``episodes.severity_score``): a
    severity assessment at intake that the registry holds, so the confounder is *measured* and
    estimators that use it (the target-trial emulation, ``vm.effects.target_trial``) can adjust
    for it; the other estimators still ignore it.
    """

    sd: float = 0.0
    loss_rate: float = 0.0
    loss: float = 0.0
    recorded: bool = False


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

    ``severity`` (off by default) adds an unmeasured episode severity that slows return, can
    drive referral and loss to follow-up (see :class:`Severity`). ``hr_j`` may depend on the
    pupil and on the start day (see :class:`Intervention`).
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
    severity: Severity = field(default_factory=lambda: Severity())


@dataclass(frozen=True)
class Intervention:
    r"""One in-episode intervention type.

    Offered to an LRV or AV episode with probability
    ``logistic(logit(uptake) + uptake_disadvantaged * dis + uptake_chronic * chronic
    + uptake_severity * S)``; it would start
    ``delay = D * exp(-timing_severity * S)``, ``D ~ Gamma(delay_shape, delay_mean / delay_shape)``,
    days after the first day of absence, and happens only if the episode is still running (and
    observed) then (``S``: the unmeasured severity, :class:`Severity`; positive
    ``uptake_severity`` / ``timing_severity``: the hardest cases are referred more often / sooner).
    From its start :math:`s` the return hazard is multiplied by

    .. math:: HR_i(s) = \exp\big[(\log hr + \delta_{dis}\,dis_i + \delta_{chr}\,chronic_i)
              \cdot 2^{-(s - \bar d)/h}\big]

    (``hr_disadvantaged`` :math:`=\delta_{dis}`, ``hr_chronic`` :math:`=\delta_{chr}`: effect
    heterogeneity; ``effect_halflife_days`` :math:`=h`, :math:`\bar d` = ``delay_mean``: the later
    it starts, the weaker; ``h = 0`` means no dependence on the start day). ``hr`` is thus the
    hazard ratio for a pupil without those characteristics starting on day ``delay_mean``,
    conditional on covariates, school frailty and severity.

    ``review_days`` :math:`k > 0`: the intervention starts only on review days, the first multiple
    of :math:`k` days after the first day of absence on or after the planned delay (a
    kernpartnerteam or actietafel that meets every :math:`k` days); 0 (default): any day.
    """

    uptake: float
    delay_mean: float
    hr: float
    delay_shape: float = 3.0
    review_days: int = 0
    uptake_disadvantaged: float = 0.0
    uptake_chronic: float = 0.0
    uptake_severity: float = 0.0
    timing_severity: float = 0.0
    hr_disadvantaged: float = 0.0
    hr_chronic: float = 0.0
    effect_halflife_days: float = 0.0


@dataclass(frozen=True)
class Approach:
    r"""The PO preventive approach: who adopts when, and what it does.

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

    A pupil is *exposed* if the PO school attended in group ``exposed_from_grade`` had adopted by
    then; the *dose* :math:`d_i` is that school's implementation fidelity :math:`f_s` (1 when
    ``fidelity_mean = 1``; else :math:`f_s \sim Beta(\mu\kappa, (1-\mu)\kappa)` with
    ``fidelity_mean`` :math:`=\mu`, ``fidelity_concentration`` :math:`=\kappa`), 0 if not exposed.
    Effects, on the log scale, are multiplied by the dose: exposed pupils' VO unexcused-hours rate
    by ``(vo_unexcused_rate_ratio * exp(modifier_disadvantaged * dis_i)) ** d_i`` (effect
    heterogeneity), VO sick reports by ``vo_sick_rate_ratio ** d_i`` and VO episode onset by
    ``vo_episode_rate_ratio ** d_i``. While active at a school, true PO unexcused absence,
    lateness and luxury absence are multiplied by ``po_true_rate_ratio`` and recording improves
    (see :class:`Recording`).
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
    fidelity_mean: float = 1.0
    fidelity_concentration: float = 10.0


@dataclass(frozen=True)
class Calendar:
    r"""Calendar time: trends, a shock year and VO registration that changes (all off by default).

    For a pupil-year in school year :math:`y` (first calendar year), relative to
    ``reference_year`` :math:`y_0`, the log rates gain

    - unexcused absence (lateness, luxury days, unexcused hours):
      ``unexcused_trend * (y - y0) + adopter_trend * (y - y0) * A_i``, where :math:`A_i = 1` for
      pupils whose (last) PO school ever adopts the approach: a trend that differs between adopters
      and the others breaks the parallel-trends assumption of difference-in-differences;
    - sick reports: ``sick_trend * (y - y0)``; episode onset: ``episode_trend * (y - y0)``;
    - in ``shock_year`` (a COVID-like school closure that no estimator is told about; 0 = none):
      ``log shock_unexcused_rr``, ``log shock_sick_rr`` and ``log shock_episode_rr``.

    VO registration of unexcused absence: a true count is thinned with probability
    ``logistic(logit(vo_detection) + (vo_detection_trend + adopter_vo_detection_trend * A_i)
    * (y - y0))`` (``vo_detection = 1`` and no trend: complete, as by default).
    """

    reference_year: int = 2016
    unexcused_trend: float = 0.0
    adopter_trend: float = 0.0
    sick_trend: float = 0.0
    episode_trend: float = 0.0
    shock_year: int = 0
    shock_unexcused_rr: float = 1.0
    shock_sick_rr: float = 1.0
    shock_episode_rr: float = 1.0
    vo_detection: float = 1.0
    vo_detection_trend: float = 0.0
    adopter_vo_detection_trend: float = 0.0


@dataclass(frozen=True)
class Consult:
    r"""M@ZL as it works: a JGZ consult for pupils who meet the sick-report criterion (off by default).

    A pupil-year meets the criterion when the pupil has 4 (``criterion_reports``) sick reports
    within 12 school weeks (``criterion_weeks``; report days uniform over the enrolled weeks) or
    a report of more than 6 consecutive sick days (a long spell). Each school (PO and VO) offers
    M@ZL with probability ``school_share`` (randomised by school, as in the trial); at an offering
    school a pupil meeting the criterion for the first time gets a JGZ consult with probability
    ``uptake``. From the next school year on, the consulted pupil's sick reports (and so sick
    days) are thinned by ``sick_rate_ratio`` (binomial thinning of the Poisson count: the rate
    ratio, conditional on everything else, is exactly ``sick_rate_ratio``). The trial's figure
    (Vanneste et al. 2016: -36% sick days at 12 months, ``mazl_effect_sick_days`` in
    ``data/calibration_targets.csv``) sets the ``mazl_consult`` scenario's 0.64. The in-episode
    ``mazl`` intervention (:class:`Intervention`) is separate and may stay on beside it.

    ``offer_confounding`` :math:`c` lets schools choose to offer M@ZL by their absence: school
    :math:`s` offers it with probability

    .. math:: \operatorname{logit} P(O_s = 1) = \operatorname{logit}(\text{school\_share}) + c\,z_s,

    with :math:`z_s` the school's absence effect (PO :math:`a_s`, VO :math:`b_t`) in standard
    deviations. With :math:`c > 0` the schools with more (sick) absence offer it more often, so a
    comparison of offering with non-offering schools is confounded; :math:`c = 0` (the default)
    randomises the offer by school, as in the trial.
    """

    uptake: float = 0.0
    school_share: float = 0.5
    offer_confounding: float = 0.0
    sick_rate_ratio: float = 0.64
    criterion_reports: int = 4
    criterion_weeks: int = 12


@dataclass(frozen=True)
class Estimands:
    """Definitions of the estimands the simulator computes from potential outcomes.

    ``treat_day``: the intervention strategy of the target trial, "start on day ``treat_day``
    after the first day of absence if the pupil is still out" (default 56: four weeks after an
    LRV episode is known), against "never start it"; ``horizons_days``: the horizons of the
    absolute risks (3, 6 and 12 months); ``rmst_days``: the horizon of the restricted mean time
    out of school.
    """

    treat_day: int = 56
    horizons_days: tuple[float, ...] = (91.0, 182.0, 365.0)
    rmst_days: int = 365


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
    calendar: Calendar = field(default_factory=Calendar)
    consult: Consult = field(default_factory=Consult)
    estimands: Estimands = field(default_factory=Estimands)

    def __post_init__(self):
        from .checks import check_scenario

        check_scenario(self)

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
    def from_cohort(cls, cohort, *, name: str = "own data", base: "Scenario | None" = None) -> "Scenario":
        """A scenario fitted to an observed cohort by the method of moments: regions "like yours".

        Sizes, absence, long-term absence, interventions' uptake and the approach's roll-out are
        estimated from the five tables; true effects and what the tables cannot identify keep the
        values of ``base`` (default :meth:`default`). Every parameter, how it is estimated or why it
        is kept: :func:`verzuimmodel.simulate.from_cohort.from_cohort`.
        """
        from .from_cohort import from_cohort

        return from_cohort(cohort, name=name, base=base)

    @classmethod
    def from_dict(cls, data: dict) -> "Scenario":
        """Build from a nested dict (as read from TOML); unknown or mistyped keys raise ``ValueError``."""
        return build(cls, data, "")

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

    def one_region(self) -> "Scenario":
        """One average region of this scenario: the same parameters with ``n_regions = 1`` and the
        numbers of PO schools, VO schools and PO pupils divided by ``n_regions`` (rounded; at least
        one school of each level). The scenario itself when it has one region.

        What a design diagnosis of a large scenario simulates (e.g. the national one: 39 regions of
        about 169 PO and 37 VO schools): the regions are drawn independently from the same
        parameters, so one region's replicates show an estimator's bias and coverage at a region's
        size, in a fraction of the time a national replicate takes.
        """
        p = self.population
        k = p.n_regions
        if k == 1:
            return self
        pupils = None if p.n_po_pupils is None else max(int(round(p.n_po_pupils / k)), 1)
        population = replace(p, n_regions=1, n_po_schools=max(int(round(p.n_po_schools / k)), 1),
                             n_vo_schools=max(int(round(p.n_vo_schools / k)), 1), n_po_pupils=pupils)
        return replace(self, name=f"{self.name} (one region of {k})", population=population)

    def to_dict(self) -> dict:
        """Nested dict of all parameters (TOML-ready: no ``None`` values)."""
        return to_dict(self)

    def to_toml(self, path=None) -> str:
        """Write the scenario as TOML to ``path`` (if given); return the TOML text."""
        text = tomli_w.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


