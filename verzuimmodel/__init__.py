"""verzuimmodel: survival, mixed-effects and simulation models for Dutch school absence.

Public names::

    import verzuimmodel as vm
    scen = vm.Scenario.default()
    cohort = vm.simulate(scen, seed=1)
    vm.calibration.compare(cohort)
    cohort.to_parquet("output/cohort"); vm.read_cohort("output/cohort")
    vm.survival.time_to_return(cohort); vm.effects.estimate(cohort, "vo_did"); vm.monitor.quarterly(cohort)
    vm.diagnose(vm.Design(scen, estimators=["vo_nb_glm", "vo_did"]), n_sims=100, seed=1)
    vm.report.build(scenario="default", seed=1, out="reports/")   # effect report, HTML + PDF
    cohort, log = vm.importing.read_export("export/", "koppeling.toml")   # a municipality's own export
    vm.set_language("nl")       # messages in Dutch (default: VERZUIM_LANG, then the locale); vm.i18n.language("en")
"""

from . import calibration, effects, evaluate, importing, mixed, monitor, outputs, plotting, schema, signal, survival
from . import i18n
from .cohort import Cohort
from .evaluate import Design, diagnose, power_curve, sample_size
from .i18n import set_language
from .io import read_cohort
from .schema import SchemaError
from .simulate import Scenario, simulate

from . import report  # noqa: E402  (last: it reads the results of everything above)

__version__ = "0.1.0"

__all__ = ["Cohort", "Design", "Scenario", "SchemaError", "calibration", "diagnose", "effects", "evaluate", "i18n",
           "importing", "mixed", "monitor", "outputs", "plotting", "power_curve", "read_cohort", "report", "sample_size", "schema",
           "set_language", "signal", "simulate", "survival"]
