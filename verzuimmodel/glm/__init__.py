r"""Count regressions at national scale: Poisson and NB2 with absorbed fixed effects, cluster-robust variances.

::

    from verzuimmodel import glm
    fit = glm.negbin(d["hours"], X, absorb=d[["vo_school_id"]], offset=np.log(d["days"]))
    fit.coef, fit.kappa
    fit.vcov("CR3", clusters=d["po_school_id"])       # also "iid", "CR0", "CR1"

- :mod:`.absorb`: the factors, the rows that carry no information (singletons, levels whose
  outcomes are all 0) and the weighted within transformation (alternating projections).
- :mod:`.irls`: :func:`poisson` and :func:`negbin` by IRLS with the factors absorbed; memory
  :math:`O(np)`, never :math:`n \times` levels.
- :mod:`.cluster`: CR0, CR1 (statsmodels' small-sample factor) and CR3 (Mancl–DeRouen, as
  statsmodels GEE ``bias_reduced`` and clubSandwich) computed cluster by cluster.

The estimates and variances equal those of the dense fits with the factors dummy-coded
(statsmodels GLM, ``NegativeBinomial`` and GEE; R ``glm``, ``MASS::glm.nb`` and clubSandwich), to
the convergence tolerance (``tests/test_fixed_effects.py``). On the national cohort's 1,347,765 VO
pupils with 1,454 VO schools absorbed, ``vo_nb_glm`` (building its rows, the NB2 fit and its CR3
variance by 6,582 PO schools) took 3.2-5.2 s over three runs, pyfixest's Poisson ``fepois`` on the
same rows 3.7-4.1 s for the fit alone (``benchmarks/bench_fixest.py --repeat 3``).
"""

from .absorb import Factors, demean
from .cluster import vcov
from .irls import CountFit, negbin, poisson

__all__ = ["CountFit", "Factors", "demean", "negbin", "poisson", "vcov"]
