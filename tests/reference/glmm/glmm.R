# Reference values for verzuimmodel.mixed.PoissonMixed / NegativeBinomialMixed (R glmmTMB and lme4).
# Run from this folder:  python make_data.py && Rscript glmm.R
suppressPackageStartupMessages({library(glmmTMB); library(lme4)})
nb <- read.csv("nb_school.csv")
po <- read.csv("poisson_school.csv")
cr <- read.csv("nb_crossed.csv")
sg <- read.csv("poisson_small_groups.csv")
py <- read.csv("nb_pupil_years.csv")
for (d in c("nb", "po", "sg")) { x <- get(d); x$school <- factor(x$school); assign(d, x) }
cr$po <- factor(cr$po); cr$vo <- factor(cr$vo)
py$pupil <- factor(py$pupil); py$po <- factor(py$po); py$vo <- factor(py$vo)

fixed <- list(); ranefs <- list()
add <- function(name, fit, factors, dispersion = NA, loglik_shift = 0) {
  if (inherits(fit, "glmmTMB")) {
    b <- fixef(fit)$cond; V <- vcov(fit)$cond
    vc <- sapply(factors, function(f) VarCorr(fit)$cond[[f]][1, 1])
    conv <- fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess)
  } else {
    b <- fixef(fit); V <- as.matrix(vcov(fit))
    vc <- sapply(factors, function(f) VarCorr(fit)[[f]][1, 1])
    conv <- length(fit@optinfo$conv$lme4$messages) == 0
  }
  fixed[[name]] <<- rbind(
    data.frame(model = name, kind = "fixed", term = names(b), estimate = unname(b), std_error = sqrt(diag(V))),
    data.frame(model = name, kind = "variance", term = factors, estimate = unname(vc), std_error = NA),
    data.frame(model = name, kind = "dispersion", term = "theta", estimate = dispersion, std_error = NA),
    data.frame(model = name, kind = "loglik", term = "logLik", estimate = as.numeric(logLik(fit)) + loglik_shift,
               std_error = NA),
    data.frame(model = name, kind = "converged", term = "converged", estimate = as.numeric(conv), std_error = NA))
  re <- ranef(fit); if (inherits(fit, "glmmTMB")) re <- re$cond
  ranefs[[name]] <<- do.call(rbind, lapply(factors, function(f)
    data.frame(model = name, factor = f, level = rownames(re[[f]]), mode = re[[f]][, 1])))
}

# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), nb, family = nbinom2)
f <- glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), nb, family = nbinom2)
add("nb_school", f, "school", sigma(f))
# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), po, family = poisson)
add("poisson_school", glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), po, family = poisson),
    "school")
# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | po) + (1 | vo), cr, family = nbinom2)
f <- glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | po) + (1 | vo), cr, family = nbinom2)
add("nb_crossed", f, c("po", "vo"), sigma(f))
# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | po) + (1 | vo), cr, family = poisson)
add("poisson_crossed", glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | po) + (1 | vo), cr,
                               family = poisson), c("po", "vo"))
# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | pupil) + (1 | po) + (1 | vo), py, family = nbinom2)
f <- glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | pupil) + (1 | po) + (1 | vo), py, family = nbinom2)
add("nb_pupil_years", f, c("pupil", "po", "vo"), sigma(f))
# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), sg, family = poisson)   (Laplace)
add("sg_tmb", glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), sg, family = poisson), "school")

# glmer(..., family = poisson, nAGQ = 1 | 10) with tight optimiser tolerances.
# With nAGQ > 1 lme4's logLik() uses deviance residuals, i.e. it omits the saturated log-likelihood
# sum(dpois(y, y, log = TRUE)); loglik_shift adds it back so that all logLik values are full ones.
ctl <- glmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
sat <- function(d) sum(dpois(d$y, d$y, log = TRUE))
for (q in c(1, 10)) {
  # glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), sg, family = poisson, nAGQ = q)
  add(paste0("sg_agq", q), glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), sg, family = poisson,
                                 nAGQ = q, control = ctl), "school", loglik_shift = if (q > 1) sat(sg) else 0)
  # glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), po, family = poisson, nAGQ = q)
  add(paste0("poisson_agq", q), glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), po,
                                      family = poisson, nAGQ = q, control = ctl), "school",
      loglik_shift = if (q > 1) sat(po) else 0)
}
write.csv(do.call(rbind, fixed), "glmm_reference.csv", row.names = FALSE)
write.csv(do.call(rbind, ranefs), "glmm_ranef.csv", row.names = FALSE)
cat(R.version.string, "glmmTMB", as.character(packageVersion("glmmTMB")),
    "lme4", as.character(packageVersion("lme4")), "\n", file = "R_VERSIONS.txt")
