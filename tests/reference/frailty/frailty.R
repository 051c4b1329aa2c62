# Reference values for verzuimmodel.survival.FrailtyCox (R survival::coxph with a gamma frailty()).
# Run from this folder:   python make_data.py && Rscript frailty.R
#
# For each model two sets of values are written:
#  - method "em": R's own search for theta (frailty.controlgam), made to converge tightly. With the
#    frailty's eps = 1e-10 R's search stops ~4e-4 (relative) short of the maximum on right_censored.csv
#    (it creeps towards it linearly), so eps = 1e-14 is used: the search then ends within ~1e-5.
#  - method "opt": the exact maximiser of R's own I-likelihood (c.loglik of fits at a fixed theta),
#    found with optimize(); the fixed-theta fit at that theta gives coefficients, SEs and frailties.
# Also the I-likelihood and fit at a few fixed theta values (method "fixed").
library(survival)
ctl <- coxph.control(eps = 1e-12, outer.max = 200, iter.max = 100, toler.chol = 1e-14)
rc <- read.csv("right_censored.csv")
ss <- read.csv("start_stop.csv")
sg <- read.csv("small_groups.csv")
nf <- read.csv("no_frailty.csv")

# model name -> formula (without the frailty term), data, extra arguments
models <- list(
  rc_efron = list(f = Surv(time, status) ~ x1 + x2, data = rc, args = list()),
  rc_breslow = list(f = Surv(time, status) ~ x1 + x2, data = rc, args = list(ties = "breslow")),
  rc_strata_weights = list(f = Surv(time, status) ~ x1 + strata(x2), data = rc, args = list(weights = quote(w), robust = FALSE)),
  ss_efron = list(f = Surv(start, stop, status) ~ tv + z, data = ss, args = list()),
  small_efron = list(f = Surv(time, status) ~ x1 + x2, data = sg, args = list()),
  # R's search ends at theta ~ 5e-9 here, with "Inner loop failed to converge" warnings: the
  # I-likelihood is flat to rounding error there. It is the boundary theta = 0 (the plain Cox model).
  no_frailty = list(f = Surv(time, status) ~ x1 + x2, data = nf, args = list())
)

fit_frailty <- function(m, ...) {
  form <- update(m$f, as.formula(paste(". ~ . + frailty(g, distribution = 'gamma', ", ..., ")")))
  do.call(coxph, c(list(form, data = m$data, control = ctl), m$args))
}
nfix <- function(fit) sum(!grepl("^gamma:", names(coef(fit))))
frail_of <- function(fit) if (is.null(fit$frail)) unname(coef(fit)[grepl("^gamma:", names(coef(fit)))]) else fit$frail
# AIC(fit), BIC(fit): the partial likelihood fit$loglik[2] with the effective degrees of freedom sum(fit$df)
# (coxpenal.df), BIC's n the number of events (nobs.coxph); df_frailty is the frailty term's
row <- function(name, method, fit, theta, c_loglik) {
  k <- nfix(fit)
  data.frame(row.names = NULL, model = name, method = method, term = names(coef(fit))[1:k], coef = unname(coef(fit))[1:k],
             se = unname(sqrt(diag(fit$var)))[1:k], theta = theta, c_loglik = c_loglik, loglik = fit$loglik[2],
             nevent = fit$nevent, df = sum(fit$df), df_frailty = fit$df[length(fit$df)], aic = AIC(fit),
             bic = BIC(fit))
}

out <- list(); frail <- list()
for (name in names(models)) {
  m <- models[[name]]
  # coxph(Surv(time, status) ~ x1 + x2 + frailty(g, distribution = "gamma", eps = 1e-14), data,
  #       control = coxph.control(eps = 1e-12, outer.max = 200, iter.max = 100, toler.chol = 1e-14))
  em <- withCallingHandlers(fit_frailty(m, "eps = 1e-14"),
                            warning = function(w) message(name, ": ", conditionMessage(w)))
  h <- em$history[[1]]$history
  out[[paste(name, "em")]] <- row(name, "em", em, unname(h[nrow(h), 1]), unname(h[nrow(h), 3]))
  frail[[paste(name, "em")]] <- data.frame(model = name, method = "em", theta = unname(h[nrow(h), 1]),
                                           g = sort(unique(m$data$g)), frail = frail_of(em))
  if (name == "no_frailty") next     # theta on the boundary 0: compared with the plain Cox model below
  # the exact maximiser of the same I-likelihood
  clog <- function(th) fit_frailty(m, paste("theta =", format(th, digits = 17)))$history[[1]]$c.loglik
  th_em <- h[nrow(h), 1]
  opt <- optimize(clog, c(th_em / 2, th_em * 2), maximum = TRUE, tol = 1e-10 * th_em)
  fx <- fit_frailty(m, paste("theta =", format(opt$maximum, digits = 17)))
  out[[paste(name, "opt")]] <- row(name, "opt", fx, opt$maximum, opt$objective)
  frail[[paste(name, "opt")]] <- data.frame(model = name, method = "opt", theta = opt$maximum,
                                            g = sort(unique(m$data$g)), frail = frail_of(fx))
}
# fixed theta: coxph(Surv(time, status) ~ x1 + x2 + frailty(g, distribution = "gamma", theta = th), rc)
for (th in c(0.1, 0.5, 1.5)) {
  fx <- fit_frailty(models$rc_efron, paste("theta =", th))
  out[[paste("fixed", th)]] <- row("rc_efron", "fixed", fx, th, fx$history[[1]]$c.loglik)
  frail[[paste("fixed", th)]] <- data.frame(model = "rc_efron", method = "fixed", theta = th,
                                            g = sort(unique(rc$g)), frail = frail_of(fx))
}
# plain Cox model (theta = 0): coxph(Surv(time, status) ~ x1 + x2, nf)
cx <- coxph(Surv(time, status) ~ x1 + x2, nf, control = ctl)
out[["cox"]] <- data.frame(model = "no_frailty", method = "cox", term = names(coef(cx)), coef = unname(coef(cx)),
                           se = unname(sqrt(diag(cx$var))), theta = 0, c_loglik = cx$loglik[2], loglik = cx$loglik[2],
                           nevent = cx$nevent, df = 2, df_frailty = 0, aic = AIC(cx), bic = BIC(cx))
options(digits = 15)
write.csv(do.call(rbind, out), "frailty_reference.csv", row.names = FALSE)
write.csv(do.call(rbind, frail), "frailty_frail.csv", row.names = FALSE)
