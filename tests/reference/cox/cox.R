# Reference values for verzuimmodel.survival.CoxPH (R survival::coxph). Run from this folder:
#   python make_data.py && Rscript cox.R
library(survival)
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)
rc <- read.csv("right_censored.csv")
ss <- read.csv("start_stop.csv")
out <- list()
add <- function(name, fit) {
  rob <- if (!is.null(fit$naive.var)) sqrt(diag(fit$var)) else NA
  naive <- if (!is.null(fit$naive.var)) sqrt(diag(fit$naive.var)) else sqrt(diag(fit$var))
  out[[name]] <<- data.frame(model = name, term = names(coef(fit)), coef = unname(coef(fit)),
                             se = unname(naive), robust_se = unname(rob),
                             loglik = fit$loglik[2], loglik_null = fit$loglik[1], nevent = fit$nevent)
}
add("breslow", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, ties = "breslow", control = ctl))
add("efron", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, ties = "efron", control = ctl))
add("efron_strata", coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), rc, control = ctl))
add("breslow_strata", coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), rc, ties = "breslow", control = ctl))
add("efron_weights", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, weights = w, control = ctl))
add("efron_cluster", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, cluster = cl, control = ctl))
add("breslow_cluster", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, cluster = cl, ties = "breslow", control = ctl))
add("efron_weights_cluster_strata",
    coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), rc, weights = w, cluster = cl, control = ctl))
add("ss_efron", coxph(Surv(start, stop, status) ~ tv + z, ss, control = ctl))
add("ss_breslow", coxph(Surv(start, stop, status) ~ tv + z, ss, ties = "breslow", control = ctl))
add("ss_efron_cluster", coxph(Surv(start, stop, status) ~ tv + z, ss, cluster = cl, control = ctl))
write.csv(do.call(rbind, out), "cox_reference.csv", row.names = FALSE)

# global tests and AIC as summary(coxph) gives them (the Wald test, unrounded, with the robust variance
# when the fit has one; the score test model-based); BIC(fit) takes the number of events as n
# (nobs.coxph: fit$nevent, unweighted also with case weights)
tests <- list()
gt <- function(name, fit) {
  s <- summary(fit)
  b <- coef(fit)
  tests[[name]] <<- data.frame(model = name, lr = unname(s$logtest["test"]), wald = as.numeric(b %*% solve(vcov(fit), b)),
                               score = unname(s$sctest["test"]), df = unname(s$logtest["df"]), aic = AIC(fit),
                               bic = BIC(fit), nobs = nobs(fit))
}
gt("efron", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, ties = "efron", control = ctl))
gt("breslow_strata", coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), rc, ties = "breslow", control = ctl))
gt("efron_cluster", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, cluster = cl, control = ctl))
gt("ss_efron", coxph(Surv(start, stop, status) ~ tv + z, ss, control = ctl))
gt("efron_weights", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, weights = w, control = ctl))
write.csv(do.call(rbind, tests), "cox_tests.csv", row.names = FALSE)

bh <- function(name, fit) data.frame(model = name, basehaz(fit, centered = FALSE))
write.csv(rbind(
  bh("efron", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, control = ctl)),
  bh("breslow", coxph(Surv(time, status) ~ x1 + x2 + x3, rc, ties = "breslow", control = ctl)),
  bh("ss_efron", coxph(Surv(start, stop, status) ~ tv + z, ss, control = ctl))
), "cox_basehaz.csv", row.names = FALSE)
