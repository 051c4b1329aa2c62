"""Mixed-effects models of absence: linear, Poisson, negative binomial and logistic, with one or crossed
random intercepts.

``LinearMixed`` (REML/ML, Satterthwaite degrees of freedom), ``PoissonMixed``,
``NegativeBinomialMixed`` and ``BinomialMixed`` (Laplace; adaptive quadrature for one factor), validated
against lme4, lmerTest and glmmTMB.
"""

from .binomial_mixed import BinomialMixed
from .glmm import NegativeBinomialMixed, PoissonMixed
from .lmm import LinearMixed

__all__ = ["BinomialMixed", "LinearMixed", "NegativeBinomialMixed", "PoissonMixed"]
