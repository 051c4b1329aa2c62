"""Seeded data for the target-trial and marginal structural model reference values (run: python make_data.py; then Rscript target_trial.R).

One region of the ``recorded_severity`` world: the episodes of a trial of the kernpartnerteam
(start on day 56 vs never), their covariates, and the interval grid of the weight models.
"""

import json
from pathlib import Path


import verzuimmodel as vm
from verzuimmodel.survival.target_trial import _grid, trial_data

HERE = Path(__file__).resolve().parent
TREAT_DAY, GRACE, HORIZONS, TAU = 56, 0, (91, 182, 365), 365
MSM_HORIZON = 365

if __name__ == "__main__":
    cohort = vm.simulate(vm.Scenario.load("recorded_severity"), seed=5)
    td = trial_data(cohort, "kernpartnerteam")
    df = td.to_frame()
    df.to_csv(HERE / "trial.csv", index=False, float_format="%.10g")
    grid = _grid(td, TREAT_DAY, GRACE, max(max(HORIZONS), TAU), 60)
    msm_grid = _grid(td, MSM_HORIZON, 0, MSM_HORIZON, 60)
    params = {"grid": grid.tolist(), "msm_grid": msm_grid.tolist(), "msm_horizon": MSM_HORIZON, "treat_day": TREAT_DAY, "grace_days": GRACE, "horizons": list(HORIZONS),
              "tau": TAU, "covariates": list(td.covariates)}
    (HERE / "params.json").write_text(json.dumps(params, indent=1) + "\n")
