"""Evaluation: diagnose estimators on simulated data and plan studies.

::

    import verzuimmodel as vm
    trial = vm.evaluate.SteppedWedgeTrial(n_clusters=12, n_periods=5, cluster_period_size=20, icc=0.05, effect=0.3)
    design = vm.Design(scenario=trial, estimators=["cluster_means", "gee"])
    diag = vm.diagnose(design, n_sims=1000, seed=1, backend="processes")
    diag.tidy()        # per estimator, against the estimand it declares (key, ATE/ATT, marginal/conditional,
                       # ITT/per protocol): bias, empirical/model SE, coverage, power, ... each with its MCSE;
                       # n_failed, n_warned (fits that raised a warning), n_used (fits measured)
    diag.warned_by_type()   # per estimator and warning type: the fits that raised it
    vm.power_curve(design, vary={"n_clusters": [6, 9, 12]}, n_sims=500, seed=1)
    vm.sample_size(design, parameter="n_clusters", target_power=0.8, estimator="cluster_means")

Parts: :mod:`.design` (Design, TOML design files), :mod:`.diagnose` (replicates and performance),
:mod:`.measures` (Morris et al. 2019 measures with MCSEs), :mod:`.trials` (trial generators),
:mod:`.trial_estimators` (the trial estimators, registered on import), :mod:`.backends` (serial,
processes, dask), :mod:`.power` (power curves, sample size, closed forms), :mod:`.plots`.
"""

from . import measures, plots
from .design import Design
from .diagnose import DIAGNOSIS_COLUMNS, REPLICATE_COLUMNS, WARNED_COLUMNS, Diagnosis, diagnose, replicate_seed
from .power import (SampleSize, design_effect, formula_power, hussey_hughes_variance, parallel_variance,
                    power_curve, sample_size, wald_power)
from .trials import ParallelTrial, SteppedWedgeTrial, TrialData

__all__ = ["DIAGNOSIS_COLUMNS", "Design", "Diagnosis", "ParallelTrial", "REPLICATE_COLUMNS", "SampleSize",
           "SteppedWedgeTrial", "TrialData", "WARNED_COLUMNS", "design_effect", "diagnose", "formula_power",
           "hussey_hughes_variance", "measures", "parallel_variance", "plots", "power_curve", "replicate_seed",
           "sample_size", "wald_power"]
