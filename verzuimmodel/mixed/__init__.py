"""Mixed-effects models of absence: linear, Poisson, negative binomial and logistic, with one or crossed
random intercepts, random slopes and correlated random effects (lme4's terms ``(x | g)``, ``(x || g)``).

``LinearMixed`` (REML/ML, Satterthwaite degrees of freedom, profile and Wald intervals), ``PoissonMixed``,
``NegativeBinomialMixed`` and ``BinomialMixed`` (Laplace; adaptive quadrature for one random intercept; profile
and Wald intervals too), and ``anova`` / ``lr_test`` for nested fits, validated against lme4, lmerTest and glmmTMB.
"""

from .binomial_mixed import BinomialMixed
from .compare import LikelihoodRatioTest, RefitWarning, anova, lr_test
from .glmm import NegativeBinomialMixed, PoissonMixed
from .lmm import LinearMixed

__all__ = ["BinomialMixed", "LikelihoodRatioTest", "LinearMixed", "NegativeBinomialMixed", "PoissonMixed",
           "RefitWarning", "anova", "lr_test"]
