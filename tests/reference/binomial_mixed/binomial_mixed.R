# Reference values for verzuimmodel.mixed.BinomialMixed (R lme4::glmer and glmmTMB, family = binomial).
# Run from this folder:  python make_data.py && Rscript binomial_mixed.R
# Writes cbpp.csv (lme4's cbpp, exported) and binomial_mixed_reference.json.
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite)})
data(cbpp, package = "lme4")
write.csv(cbpp, "cbpp.csv", row.names = FALSE)
cr <- read.csv("binary_crossed.csv")
sg <- read.csv("binary_small_groups.csv")
cr$po <- factor(cr$po); cr$klas <- factor(cr$klas); cr$vo <- factor(cr$vo)
sg$school <- factor(sg$school)

# glmer with tight tolerances: with its defaults (or tolPwrss = 1e-10) glmer stops its inner PIRLS iteration
# early enough to move the Laplace log-likelihood of the small-groups fit by 7e-5 (and the variance by 1e-4).
# glmmTMB with nlminb's default rel.tol = 1e-10: tighter values (1e-11, 1e-12) end in "singular convergence"
# at the same estimates.
ctl <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-12,
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
tmb_ctl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4))

models <- list()
# fit an expression, keep every warning R gives (the tests require none)
fit_quietly <- function(expr) {
  caught <- character(0)
  fit <- withCallingHandlers(expr, warning = function(w) {
    caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning")
  })
  list(fit = fit, warnings = caught)
}
add <- function(name, call, factors, saturated = 0) {
  res <- fit_quietly(call); fit <- res$fit
  if (inherits(fit, "glmmTMB")) {
    b <- fixef(fit)$cond; V <- vcov(fit)$cond
    vc <- sapply(factors, function(f) VarCorr(fit)$cond[[f]][1, 1])
    conv <- fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess)
    re <- ranef(fit)$cond
  } else {
    b <- fixef(fit); V <- as.matrix(vcov(fit))
    vc <- sapply(factors, function(f) VarCorr(fit)[[f]][1, 1])
    conv <- fit@optinfo$conv$opt == 0 && length(fit@optinfo$conv$lme4$messages) == 0
    re <- ranef(fit)
  }
  models[[name]] <<- list(
    call = paste(deparse(substitute(call), width.cutoff = 500L), collapse = " "),
    fixed = as.list(b), std_error = as.list(sqrt(diag(V))), variance = as.list(vc),
    # with nAGQ > 1 glmer's logLik() is -deviance/2, which omits the saturated log-likelihood
    # sum(dbinom(y, m, y/m, log = TRUE)); `saturated` adds it back so that every logLik is the full one
    loglik = as.numeric(logLik(fit)) + saturated, loglik_as_reported = as.numeric(logLik(fit)),
    converged = conv, warnings = res$warnings,
    ranef = lapply(setNames(factors, factors), function(f) as.list(setNames(re[[f]][, 1], rownames(re[[f]])))))
}
sat_cbpp <- sum(dbinom(cbpp$incidence, cbpp$size, cbpp$incidence / cbpp$size, log = TRUE))

# binary outcome, PO x VO schools crossed, classes nested in PO schools
add("crossed_tmb", glmmTMB(y ~ x1 + x2 + treat + (1 | po) + (1 | klas) + (1 | vo), cr, family = binomial,
                           control = tmb_ctl), c("po", "klas", "vo"))
add("crossed_glmer", glmer(y ~ x1 + x2 + treat + (1 | po) + (1 | klas) + (1 | vo), cr, family = binomial,
                           control = ctl), c("po", "klas", "vo"))
add("crossed2_tmb", glmmTMB(y ~ x1 + x2 + treat + (1 | po) + (1 | vo), cr, family = binomial, control = tmb_ctl),
    c("po", "vo"))
# binomial counts: lme4's cbpp
add("cbpp_tmb", glmmTMB(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                        control = tmb_ctl), "herd")
add("cbpp_agq1", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                       nAGQ = 1, control = ctl), "herd")
add("cbpp_agq10", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                        nAGQ = 10, control = ctl), "herd", saturated = sat_cbpp)
# small groups, binary (saturated log-likelihood 0)
add("sg_tmb", glmmTMB(y ~ x1 + x2 + treat + (1 | school), sg, family = binomial, control = tmb_ctl), "school")
add("sg_agq1", glmer(y ~ x1 + x2 + treat + (1 | school), sg, family = binomial, nAGQ = 1, control = ctl), "school")
add("sg_agq10", glmer(y ~ x1 + x2 + treat + (1 | school), sg, family = binomial, nAGQ = 10, control = ctl), "school")

out <- list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
            glmmTMB = as.character(packageVersion("glmmTMB")), jsonlite = as.character(packageVersion("jsonlite")),
            models = models)
write_json(out, "binomial_mixed_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
