"""Mixed-effects models of absence: linear, Poisson and negative binomial, with one or crossed random intercepts.

``LinearMixed`` (REML/ML, Satterthwaite degrees of freedom), ``PoissonMixed`` and
``NegativeBinomialMixed`` (Laplace; adaptive quadrature for one factor), validated against lme4,
lmerTest and glmmTMB.
"""

from .glmm import NegativeBinomialMixed, PoissonMixed
from .lmm import LinearMixed

__all__ = ["LinearMixed", "NegativeBinomialMixed", "PoissonMixed"]
