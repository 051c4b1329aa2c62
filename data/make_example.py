"""Write the small example cohort in data/example/ (CSV, the documented export format).

Run: ``python data/make_example.py``. A simulated cohort of a few schools, exported as a
municipality or school board would: the five tables as CSV, without the simulator's true values
(``*_true`` columns) and without its truth — exactly what notebook 05 reads.
"""

from dataclasses import replace
from pathlib import Path

import verzuimmodel as vm
from verzuimmodel.cohort import Cohort

HERE = Path(__file__).resolve().parent


def example_cohort() -> Cohort:
    scen = vm.Scenario.default()
    scen = replace(scen, name="example",
                   population=replace(scen.population, n_po_schools=14, n_vo_schools=4, n_cohorts=6,
                                      first_cohort=2010, sbo_share=0.08),
                   approach=replace(scen.approach, design="staggered", pilot_schools=5, wave_size=2))
    c = vm.simulate(scen, seed=2024)
    absence = c.absence[[col for col in c.absence.columns if not col.endswith("_true")]]
    return Cohort(c.schools, c.pupils, absence, c.episodes, c.interventions)


if __name__ == "__main__":
    example_cohort().to_csv(HERE / "example")
