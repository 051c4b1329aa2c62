"""verzuimmodel: survival, mixed-effects and simulation models for Dutch school absence.

Public names::

    import verzuimmodel as vm
    scen = vm.Scenario.default()
    cohort = vm.simulate(scen, seed=1)
    vm.calibration.compare(cohort)
    cohort.to_parquet("output/cohort"); vm.read_cohort("output/cohort")
"""

from . import calibration, effects, monitor, plotting, schema, survival
from .cohort import Cohort
from .io import read_cohort
from .schema import SchemaError
from .simulate import Scenario, simulate

__version__ = "0.1.0"

__all__ = ["Cohort", "Scenario", "SchemaError", "calibration", "effects", "monitor", "plotting", "read_cohort", "schema",
           "simulate", "survival"]
