# Reference values for verzuimmodel.survival.competing (R cmprsk::crr, survival::finegray).
# Run from this folder:  python make_data.py && Rscript finegray.R
# Writes crr_reference.csv (coefficients, SEs, log-likelihoods), crr_variance.csv (fit$var and
# fit$invinf), crr_baseline.csv (fit$uftime, fit$bfitj), crr_predict.csv (predict.crr CIFs),
# finegray_*.csv (survival::finegray expansions), crr_ic.csv and cause_specific_ic.csv (AIC and BIC).
suppressPackageStartupMessages({library(cmprsk); library(survival)})
options(digits = 15)
cc <- read.csv("competing.csv")
ss <- read.csv("competing_start_stop.csv")
cov1 <- as.matrix(cc[, c("x1", "x2", "x3")])
rep_rows <- rep(seq_len(nrow(cc)), cc$fw)        # frequency weights as replicated rows
fits <- list(
  cause1 = crr(cc$time, cc$status, cov1, failcode = 1, cencode = 0),
  cause2 = crr(cc$time, cc$status, cov1, failcode = 2, cencode = 0),
  cause3 = crr(cc$time, cc$status, cov1, failcode = 3, cencode = 0),
  cause1_fw = crr(cc$time[rep_rows], cc$status[rep_rows], cov1[rep_rows, ], failcode = 1, cencode = 0)
)
ref <- var <- base <- pred <- list()
profiles <- data.frame(profile = 1:3, x1 = c(0, 1.2, -0.7), x2 = c(0, 1, 1), x3 = c(0, -0.5, 0.8))
times <- c(2, 5.5, 10, 26, 52, 80)
for (name in names(fits)) {
  f <- fits[[name]]
  stopifnot(f$converged)
  ref[[name]] <- data.frame(model = name, term = names(f$coef), coef = unname(f$coef),
                            se = sqrt(diag(f$var)), naive_se = sqrt(diag(f$invinf)),
                            loglik = f$loglik, loglik_null = f$loglik.null, n = f$n)
  k <- length(f$coef)
  var[[name]] <- rbind(
    data.frame(model = name, matrix = "var", row = rep(names(f$coef), k), col = rep(names(f$coef), each = k),
               value = c(f$var)),
    data.frame(model = name, matrix = "invinf", row = rep(names(f$coef), k), col = rep(names(f$coef), each = k),
               value = c(f$invinf)))
  base[[name]] <- data.frame(model = name, time = f$uftime, bfitj = f$bfitj)
  p <- predict(f, as.matrix(profiles[, c("x1", "x2", "x3")]))       # columns: uftime, CIF per profile
  idx <- findInterval(times, p[, 1])                                 # step function at the chosen times
  for (j in seq_len(nrow(profiles))) {
    pred[[paste(name, j)]] <- data.frame(model = name, profile = j, profiles[j, c("x1", "x2", "x3")],
                                         time = times, cif = ifelse(idx == 0, 0, p[pmax(idx, 1), j + 1]),
                                         row.names = NULL)
  }
}
write.csv(do.call(rbind, ref), "crr_reference.csv", row.names = FALSE)
write.csv(do.call(rbind, var), "crr_variance.csv", row.names = FALSE)
write.csv(do.call(rbind, base), "crr_baseline.csv", row.names = FALSE)
write.csv(do.call(rbind, pred), "crr_predict.csv", row.names = FALSE)

# survival::finegray: right-censored episodes, and start-stop rows with late entry
fg1 <- finegray(Surv(time, factor(status)) ~ id + x1 + x2 + x3, data = cc, etype = "1")
write.csv(fg1[, c("id", "fgstart", "fgstop", "fgstatus", "fgwt")], "finegray_right.csv", row.names = FALSE)
fg2 <- finegray(Surv(time, factor(status)) ~ id + x1 + x2 + x3, data = cc, etype = "2", weights = fw)
write.csv(fg2[, c("id", "fgstart", "fgstop", "fgstatus", "fgwt")], "finegray_right_cause2_weights.csv",
          row.names = FALSE)
fg4 <- finegray(Surv(time, factor(status)) ~ id + x1 + x2 + x3 + strata(x2), data = cc, etype = "3")
write.csv(fg4[, c("id", "fgstart", "fgstop", "fgstatus", "fgwt")], "finegray_right_cause3_strata.csv",
          row.names = FALSE)
fg3 <- finegray(Surv(start, stop, factor(status)) ~ id + tv + z, data = ss, id = id, etype = "1")
write.csv(fg3[, c("id", "tv", "fgstart", "fgstop", "fgstatus", "fgwt")], "finegray_start_stop.csv",
          row.names = FALSE)
# For the record (not asserted): a weighted Breslow Cox on the expanded data. It differs slightly
# from crr because finegray() counts events tied with a censoring time as before it (out of the
# censoring risk set), crr's survfit() counts them as still at risk.
cf <- coxph(Surv(fgstart, fgstop, fgstatus) ~ x1 + x2 + x3, data = fg1, weights = fgwt, ties = "breslow")
print(rbind(crr = fits$cause1$coef, coxph_finegray = coef(cf)))

# AIC and BIC. cmprsk has no logLik method: coxph's definitions, which BIC(coxph) applies to the Fine-Gray
# model fitted on finegray() data (n = the number of events of the cause, nobs.coxph), on crr's log
# pseudo-likelihood: AIC = -2 loglik + 2 p, BIC = -2 loglik + log(events of the cause) p.
stopifnot(nobs(cf) == sum(cc$status == 1))
ic <- list()
for (name in c("cause1", "cause2", "cause3")) {
  f <- fits[[name]]
  k <- length(f$coef)
  nev <- sum(cc$status == as.integer(sub("cause", "", name)))
  ic[[name]] <- data.frame(model = name, loglik = f$loglik, df = k, nevent = nev,
                           aic = -2 * f$loglik + 2 * k, bic = -2 * f$loglik + log(nev) * k)
}
write.csv(do.call(rbind, ic), "crr_ic.csv", row.names = FALSE)
# Cause-specific Cox models together: the multi-state coxph(Surv(time, factor(status)) ~ ...), whose log
# partial likelihood is the sum over the causes', df their coefficients, and BIC's n all events (nobs.coxph)
ms <- coxph(Surv(time, factor(status)) ~ x1 + x2 + x3, data = cc, id = id)
one <- sapply(1:3, function(k) coxph(Surv(time, status == k) ~ x1 + x2 + x3, data = cc)$loglik[2])
stopifnot(abs(ms$loglik[2] - sum(one)) < 1e-8)
write.csv(data.frame(model = "cause_specific", loglik = ms$loglik[2], df = attr(logLik(ms), "df"), nobs = nobs(ms),
                     aic = AIC(ms), bic = BIC(ms)), "cause_specific_ic.csv", row.names = FALSE)
