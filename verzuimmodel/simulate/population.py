"""Regions, schools, pupils and the PO approach's adoption schedule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit, ndtri
from scipy.stats import beta
from scipy.stats import gamma as gamma_dist

from .scenario import Approach, Population, Scenario

PO_YEARS = 6
"""PO years followed per pupil: groups 3-8 (grade index 0-5); VO years follow (index 6, ...)."""


def n_grades(scen: Scenario) -> int:
    """Years followed per pupil: six PO groups and ``population.vo_years`` VO years."""
    return PO_YEARS + scen.population.vo_years

NEVER = np.iinfo(np.int32).max
"""Adoption year of a school that never adopts."""

VO_ID_OFFSET = 100_000
"""VO school ids start here so PO and VO ids never collide."""


@dataclass(frozen=True)
class Schools:
    """Schools as arrays (index = position). PO ids are ``1..n_po``, VO ids ``VO_ID_OFFSET + 1..``."""

    po_region: np.ndarray
    po_sbo: np.ndarray
    po_size: np.ndarray
    po_effect: np.ndarray          # a_s, log-rate scale
    po_detection_z: np.ndarray     # standard normal, recording
    po_frailty: np.ndarray         # Z_s, return hazard
    po_disadvantaged_share: np.ndarray
    po_adopt_year: np.ndarray      # int32, NEVER if never
    vo_region: np.ndarray
    vo_effect: np.ndarray          # b_t
    vo_frailty: np.ndarray
    po_fidelity: np.ndarray        # implementation fidelity of the approach (1 = full)
    po_mazl: np.ndarray            # offers M@ZL consults (Consult)
    vo_mazl: np.ndarray

    @property
    def po_id(self) -> np.ndarray:
        return np.arange(1, len(self.po_region) + 1, dtype=np.int64)

    @property
    def vo_id(self) -> np.ndarray:
        return VO_ID_OFFSET + np.arange(1, len(self.vo_region) + 1, dtype=np.int64)


@dataclass(frozen=True)
class Pupils:
    """Pupils as arrays (index = position; pupil id = index + 1)."""

    po_school: np.ndarray      # index into PO schools
    vo_school: np.ndarray      # index into VO schools
    cohort: np.ndarray         # school year in group 3
    female: np.ndarray
    disadvantaged: np.ndarray
    chronic: np.ndarray
    special: np.ndarray
    track: np.ndarray          # 0 vmbo, 1 havo, 2 vwo
    u: np.ndarray              # PO propensity
    v: np.ndarray              # VO propensity
    followup_end: np.ndarray   # day number (days since 1970-01-01), inclusive
    observed_from: np.ndarray  # first day observed (group 3, the open region's first year, or moving in)
    po_school_first: np.ndarray  # PO school before a change of school (= po_school if none)
    switch_index: np.ndarray   # grade index from which po_school is attended (0: from group 3)
    n_grades: int = 10

    @property
    def n(self) -> int:
        return len(self.po_school)

    @property
    def n_years(self) -> np.ndarray:
        """School years simulated (grade index 0..n_years-1 have at least one day before follow-up ends)."""
        start = aug1(self.cohort)
        years = (self.followup_end - start) // 365 + 1
        return np.clip(years, 0, self.n_grades).astype(np.int64)

    @property
    def recorded_po_school(self) -> np.ndarray:
        """The PO school a registry records: the one attended in the last observed PO year."""
        last = np.clip(self.n_years - 1, 0, PO_YEARS - 1)
        return self.po_school_at(np.arange(self.n), last)

    def po_school_at(self, pupil: np.ndarray, grade_index) -> np.ndarray:
        """Index of the PO school attended by ``pupil`` in grade index ``grade_index``."""
        return np.where(grade_index < self.switch_index[pupil], self.po_school_first[pupil], self.po_school[pupil])


def aug1(year) -> np.ndarray:
    """Day number of 1 August of ``year`` (the first day of school year ``year``/``year+1``)."""
    year = np.asarray(year, dtype=np.int64)
    # 365 days a year plus one per leap year in 1970..year (its 29 Feb falls before 1 Aug); 212 = 1 Jan -> 1 Aug
    def leap_years_upto(y):
        return y // 4 - y // 100 + y // 400

    return (year - 1970) * 365 + leap_years_upto(year) - leap_years_upto(1969) + 212


def draw_schools(scen: Scenario, rng: np.random.Generator) -> Schools:
    """Draw regions, PO and VO schools, their effects and the approach's adoption years."""
    p, var = scen.population, scen.variation
    n_po, n_vo = p.n_po_schools, p.n_vo_schools
    po_region = np.sort(np.arange(n_po) % p.n_regions)
    vo_region = np.sort(np.arange(n_vo) % p.n_regions)
    po_sbo = np.zeros(n_po, dtype=bool)
    po_sbo[rng.permutation(n_po)[:int(round(p.sbo_share * n_po))]] = True
    size = _draw_sizes(p, po_sbo, rng)
    theta = scen.episodes.frailty_variance
    po_u = _school_uniforms(var.school_sampling, po_region, 3, rng)
    vo_u = _school_uniforms(var.school_sampling, vo_region, 2, rng)
    po_effect = var.sd_po_school * ndtri(po_u[0])
    vo_effect = var.sd_vo_school * ndtri(vo_u[0])
    m = p.p_disadvantaged
    disadv_share = beta.ppf(po_u[2], 4 * m + 1e-9, 4 * (1 - m) + 1e-9)
    detection_z = rng.normal(size=n_po)
    adopt = adoption_years(scen.approach, po_region, _adoption_driver(scen, po_effect, disadv_share), rng)
    ap, co = scen.approach, scen.consult
    fidelity = np.ones(n_po)
    if ap.fidelity_mean < 1:
        k = ap.fidelity_concentration
        fidelity = rng.beta(ap.fidelity_mean * k, (1 - ap.fidelity_mean) * k, n_po)
    po_mazl, vo_mazl = np.zeros(n_po, dtype=bool), np.zeros(n_vo, dtype=bool)
    if co.uptake > 0:
        po_mazl = rng.random(n_po) < _offer_probability(co, po_effect)
        vo_mazl = rng.random(n_vo) < _offer_probability(co, vo_effect)
    return Schools(
        po_region=po_region, po_sbo=po_sbo, po_size=size, po_effect=po_effect,
        po_detection_z=detection_z, po_frailty=_gamma_frailty(theta, po_u[1]),
        po_disadvantaged_share=disadv_share, po_adopt_year=adopt,
        vo_region=vo_region, vo_effect=vo_effect, vo_frailty=_gamma_frailty(theta, vo_u[1]),
        po_fidelity=fidelity, po_mazl=po_mazl, vo_mazl=vo_mazl,
    )


def _offer_probability(co, effect: np.ndarray) -> np.ndarray | float:
    """P(school offers M@ZL): ``school_share``, shifted on the logit scale by ``offer_confounding``
    per SD of the schools' absence effects (:class:`~verzuimmodel.simulate.scenario.Consult`)."""
    if co.offer_confounding == 0:
        return co.school_share
    sd = effect.std()
    z = effect / sd if sd > 0 else np.zeros(len(effect))
    share = min(max(co.school_share, 1e-9), 1 - 1e-9)
    return expit(logit(share) + co.offer_confounding * z)


def _school_uniforms(sampling: str, region: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` uniform draws per school: independent, or stratified (Latin hypercube) within each region."""
    u = rng.random((k, len(region)))
    if sampling == "iid":
        return u
    size = np.bincount(region)[region]
    for row in range(k):
        u[row] = (_rank_within_region(region, rng) + u[row]) / size
    return u


def _rank_within_region(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of the schools within each region: ranks 0..size-1 (``region`` is sorted)."""
    n = len(region)
    rank = np.empty(n, np.int64)
    rank[np.lexsort((rng.random(n), region))] = np.arange(n)
    return rank - np.searchsorted(region, region)


def _gamma_frailty(theta: float, u: np.ndarray) -> np.ndarray:
    """Gamma frailty with mean 1 and variance ``theta`` by inversion of uniforms ``u``."""
    if theta <= 0:
        return np.ones(len(u))
    return gamma_dist.ppf(u, 1.0 / theta, scale=theta)


def _draw_sizes(p: Population, sbo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PO school sizes: CBS bands for mainstream schools, exponential-ish for SBO, rescaled to ``n_po_pupils``."""
    edges = np.asarray(p.po_size_band_edges)
    w = np.asarray(p.po_size_band_weights)
    n = len(sbo)
    band = rng.choice(len(w), size=n, p=w / w.sum())
    size = edges[band] + rng.random(n) * (edges[band + 1] - edges[band])
    size[sbo] = rng.gamma(4.0, p.sbo_mean_size / 4.0, sbo.sum())
    if p.n_po_pupils is not None:
        size *= p.n_po_pupils / size.sum()
    return np.maximum(np.rint(size), 8).astype(np.int64)


def _adoption_driver(scen: Scenario, po_effect: np.ndarray, disadv_share: np.ndarray) -> np.ndarray:
    """Standardised school characteristic that drives observational adoption (see :class:`Approach`)."""
    if scen.approach.adoption_driver == "disadvantaged":
        m = scen.population.p_disadvantaged
        sd = np.sqrt(m * (1 - m) / 5)                  # Beta(4m, 4(1 - m)) has variance m(1 - m)/5
        return (disadv_share - m) / sd if sd > 0 else np.zeros(len(disadv_share))
    sd = scen.variation.sd_po_school
    return po_effect / sd if sd > 0 else np.zeros(len(po_effect))


def adoption_years(ap: Approach, region: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """First school year with the approach for each PO school (``NEVER`` if never); see :class:`Approach`.
    ``z``: the standardised characteristic that drives observational adoption."""
    n = len(region)
    years = np.full(n, NEVER, dtype=np.int64)
    if ap.design == "none":
        return years
    if ap.design == "parallel":
        size = np.bincount(region)[region]
        treated = _rank_within_region(region, rng) < np.rint(ap.share_treated * size)
        years[treated] = ap.start_year
    elif ap.design == "stepped_wedge":
        step = rng.permutation(np.arange(n) % ap.n_steps)
        years = ap.start_year + step
    elif ap.design == "staggered":
        order = rng.permutation(n)
        n_treated = max(min(ap.pilot_schools, n), int(round(ap.share_treated * n)))
        position = np.arange(n_treated)
        wave = np.where(position < ap.pilot_schools, 0,
                        1 + (position - ap.pilot_schools) // max(ap.wave_size, 1))
        years[order[:n_treated]] = ap.start_year + wave
    elif ap.design == "observational":
        share = min(max(ap.share_treated, 1e-6), 1 - 1e-6)
        adopt = rng.random(n) < expit(logit(share) + ap.confounding * z)
        years[adopt] = ap.start_year
    return years


def draw_pupils(scen: Scenario, schools: Schools, rng: np.random.Generator) -> Pupils:
    """Pupils of every PO school's grade cohorts, with covariates, propensities and follow-up.

    ``population.mode = "cohorts"``: ``n_cohorts`` cohorts from ``first_cohort`` (a closed panel).
    ``"open"``: the cohorts that fill every grade of the observed school years, observed from
    ``first_cohort`` on, with each pupil who moves away replaced by one moving in (see
    :class:`~verzuimmodel.simulate.scenario.Population`).
    """
    p = scen.population
    grades = n_grades(scen)
    per_cohort = np.maximum(np.rint(schools.po_size / 8.0), 1).astype(np.int64)
    study_end = np.datetime64(p.followup_end, "D").astype(np.int64)
    if p.mode == "open":
        last = int(np.datetime64(p.followup_end, "D").astype("datetime64[Y]").astype(int)) + 1970
        last -= int(study_end < aug1(last))          # the school year holding the study end
        cohorts = np.arange(p.first_cohort - grades + 1, last + 1)
        window = int(aug1(p.first_cohort))
    else:
        cohorts = p.first_cohort + np.arange(p.n_cohorts)
        window = None
    po_school = np.tile(np.repeat(np.arange(len(per_cohort)), per_cohort), len(cohorts))
    cohort = np.repeat(cohorts, per_cohort.sum())
    start = aug1(cohort)
    parts = [_members(scen, schools, po_school, cohort, start if window is None else np.maximum(start, window),
                      rng)]
    if window is not None:
        # movers are replaced by pupils of the same cohort moving into the region that day (a few rounds)
        by_region = np.argsort(schools.po_region[po_school], kind="stable")
        bounds = np.searchsorted(schools.po_region[po_school][by_region], np.arange(p.n_regions + 1))
        for _ in range(6):
            last_part = parts[-1]
            moved = np.flatnonzero(last_part["moved"] < np.minimum(study_end, aug1(last_part["cohort"] + grades) - 1))
            if not len(moved):
                break
            region = schools.po_region[last_part["po_school_first"][moved]]
            pick = bounds[region] + np.floor(rng.random(len(moved)) * (bounds[region + 1] - bounds[region]))
            new_school = po_school[by_region[pick.astype(np.int64)]]
            parts.append(_members(scen, schools, new_school, last_part["cohort"][moved],
                                  np.maximum(last_part["moved"][moved] + 1, window), rng))
    d = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    d["followup_end"] = np.minimum(np.minimum(d.pop("moved"), study_end), aug1(d["cohort"] + grades) - 1)
    return Pupils(**d, n_grades=grades)


def _members(scen: Scenario, schools: Schools, po_school: np.ndarray, cohort: np.ndarray, observed_from: np.ndarray,
             rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Covariates, propensities, VO school, day of moving away and change of PO school of new pupils."""
    p, var = scen.population, scen.variation
    n = len(po_school)
    sbo = schools.po_sbo[po_school]
    female = rng.random(n) < p.p_female
    disadvantaged = rng.random(n) < schools.po_disadvantaged_share[po_school]
    chronic = rng.random(n) < p.p_chronic_illness
    special = sbo | (rng.random(n) < p.p_special_needs)
    u = rng.standard_normal(n)
    rho = var.tracking_rho
    v = rho * u + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    track = _draw_tracks(p, disadvantaged, special, u, rng)
    first = po_school
    switch = np.zeros(n, dtype=np.int64)
    if p.po_switch_rate > 0:
        # at most one change of PO school, in group 4-8: to a random school of the region
        g = rng.geometric(p.po_switch_rate, n)
        moves = g < PO_YEARS
        region = schools.po_region[po_school]
        counts = np.bincount(schools.po_region, minlength=p.n_regions)
        offset = np.concatenate([[0], np.cumsum(counts)[:-1]])   # schools are sorted by region
        other = offset[region] + np.floor(rng.random(n) * counts[region]).astype(np.int64)
        po_school = np.where(moves, other, po_school)
        switch = np.where(moves, g, 0)
    vo_school = _draw_feeders(p, schools, po_school, rng)
    moved = observed_from + rng.exponential(365.0 / p.move_rate, n).astype(np.int64) if p.move_rate > 0 \
        else np.full(n, NEVER, dtype=np.int64)
    return {"po_school": po_school, "vo_school": vo_school, "cohort": cohort, "female": female,
            "disadvantaged": disadvantaged, "chronic": chronic, "special": special, "track": track, "u": u, "v": v,
            "moved": moved, "observed_from": np.asarray(observed_from, dtype=np.int64), "po_school_first": first,
            "switch_index": switch}


TRACK_SCORE = (-0.8, -1.0, -0.3)
"""Coefficients of disadvantage, special needs and the PO propensity ``u`` in the latent VO track
score (plus a standard normal term); :mod:`.from_cohort` needs them to condition on the track."""


def _draw_tracks(p: Population, disadvantaged, special, u, rng) -> np.ndarray:
    """VO track by rank of a latent score: the lowest ``vmbo_share`` go to vmbo, the next ``havo_share`` to havo."""
    c_dis, c_special, c_u = TRACK_SCORE
    score = c_dis * disadvantaged + c_special * special + c_u * u + rng.standard_normal(len(u))
    rank = np.argsort(np.argsort(score)) / max(len(u), 1)
    return np.where(rank < p.vmbo_share, 0, np.where(rank < p.vmbo_share + p.havo_share, 1, 2)).astype(np.int8)


def _draw_feeders(p: Population, schools: Schools, po_school: np.ndarray, rng) -> np.ndarray:
    """VO school of each pupil: each PO school spreads its pupils over its region's VO schools (Dirichlet)."""
    vo_school = np.empty(len(po_school), dtype=np.int64)
    pupil_region = schools.po_region[po_school]
    for r in range(p.n_regions):
        vo_idx = np.flatnonzero(schools.vo_region == r)
        po_idx = np.flatnonzero(schools.po_region == r)
        probs = rng.dirichlet(np.full(len(vo_idx), p.feeder_concentration), size=len(po_idx))
        cdf = np.cumsum(probs, axis=1)
        cdf[:, -1] = 1.0
        members = np.flatnonzero(pupil_region == r)
        row = np.searchsorted(po_idx, po_school[members])
        draw = rng.random(len(members))
        # the draw's position in the pupil's cdf row, as one searchsorted over the rows laid end to end
        flat = (cdf + 2.0 * np.arange(len(po_idx))[:, None]).ravel()
        choice = np.searchsorted(flat, draw + 2.0 * row, side="right") - row * len(vo_idx)
        vo_school[members] = vo_idx[np.minimum(choice, len(vo_idx) - 1)]
    return vo_school


@dataclass(frozen=True)
class Exposure:
    """Each pupil's exposure to the PO approach (see :class:`~verzuimmodel.simulate.scenario.Approach`)."""

    dose: np.ndarray        # fidelity of the school attended in group exposed_from_grade if it had adopted by then
    full_dose: np.ndarray   # the dose had every PO school adopted in time
    assigned: np.ndarray    # the recorded (last) PO school had adopted by then: what an analysis sees
    adopter: np.ndarray     # the recorded PO school adopts at some time


def exposure(scen: Scenario, schools: Schools, pupils: Pupils) -> Exposure:
    """Dose, dose under universal adoption, and assignment as recorded, per pupil."""
    ge = scen.approach.exposed_from_grade - 3
    school = pupils.po_school_at(np.arange(pupils.n), ge)
    deadline = pupils.cohort + ge
    fidelity = schools.po_fidelity[school]
    recorded = schools.po_adopt_year[pupils.recorded_po_school]
    return Exposure(dose=(schools.po_adopt_year[school] <= deadline) * fidelity, full_dose=fidelity,
                    assigned=recorded <= deadline, adopter=recorded != NEVER)
