# Reference values for verzuimmodel.survival.parametric.WeibullPH. Run from this folder:
#   python make_data.py && Rscript weibull.R
# Writes weibull_reference.csv (one row per model and term: PH coefficient, SE, covariance row, loglik)
# and weibull_ic.csv (AIC and BIC of the survreg fits).
#
# survreg fits the Weibull as an accelerated failure time model:
#   log T = mu + x'alpha + sigma * W,  W standard extreme value,
# i.e. S(t|x) = exp(-t^(1/sigma) exp(-(mu + x'alpha)/sigma)). In the proportional-hazards form
#   h(t|x) = lambda rho t^(rho-1) exp(x'beta):
#   beta = -alpha / sigma,  log_lambda = -mu / sigma,  log_rho = -log(sigma).
# Covariances follow by the delta method with the Jacobian J below (exact at the maximum: the
# likelihood is the same, only reparametrised).
library(survival)
d <- read.csv("episodes.csv")
ctl <- survreg.control(rel.tolerance = 1e-12, toler.chol = 1e-14, maxiter = 100)
terms <- c("x1", "x2", "log_lambda", "log_rho")

to_ph <- function(theta) {   # theta = (mu, alpha1, alpha2, log sigma)
  s <- exp(theta[4])
  c(-theta[2:3] / s, -theta[1] / s, -theta[4])
}
jacobian <- function(theta) {
  s <- exp(theta[4]); a <- theta[2:3]; mu <- theta[1]
  J <- matrix(0, 4, 4)                      # rows: x1, x2, log_lambda, log_rho; cols: mu, a1, a2, log sigma
  J[1, 2] <- -1 / s; J[1, 4] <- a[1] / s
  J[2, 3] <- -1 / s; J[2, 4] <- a[2] / s
  J[3, 1] <- -1 / s; J[3, 4] <- mu / s
  J[4, 4] <- -1
  J
}
out <- list()
add <- function(name, theta, V, loglik) {
  J <- jacobian(theta)
  Vph <- J %*% V %*% t(J)
  est <- to_ph(theta)
  out[[name]] <<- data.frame(model = name, term = terms, estimate = est, std_error = sqrt(diag(Vph)),
                             cov_x1 = Vph[, 1], cov_x2 = Vph[, 2], cov_log_lambda = Vph[, 3],
                             cov_log_rho = Vph[, 4], loglik = loglik)
}
add_survreg <- function(name, fit, V = fit$var) {
  add(name, c(coef(fit), log(fit$scale)), V, fit$loglik[2])
}

# survreg(Surv(time, status) ~ x1 + x2, d, dist = "weibull")
m0 <- survreg(Surv(time, status) ~ x1 + x2, d, dist = "weibull", control = ctl)
add_survreg("plain", m0)
# survreg(..., weights = w)
add_survreg("weights", survreg(Surv(time, status) ~ x1 + x2, d, weights = w, dist = "weibull", control = ctl))
# survreg(..., cluster = cl): robust sandwich crossprod(rowsum(dfbeta, cl))
add_survreg("cluster", survreg(Surv(time, status) ~ x1 + x2, d, cluster = cl, dist = "weibull", control = ctl))
# survreg(..., robust = TRUE): each row its own cluster
add_survreg("robust", survreg(Surv(time, status) ~ x1 + x2, d, robust = TRUE, dist = "weibull", control = ctl))
# survreg(..., weights = w, cluster = cl): survreg's own robust variance leaves the case weights out of
# the dfbeta residuals; the sandwich of the weighted score equations (as coxph) uses weighted ones:
mw <- survreg(Surv(time, status) ~ x1 + x2, d, weights = w, dist = "weibull", control = ctl)
Vw <- crossprod(rowsum(residuals(mw, type = "dfbeta", weighted = TRUE), d$cl))
add_survreg("weights_cluster", mw, Vw)

# Left truncation (late entry) is not in survreg: maximise the truncated log-likelihood in the PH form
#   sum_i w_i [status_i (log lambda + log rho + (rho - 1) log t_i + x_i'beta) - lambda exp(x_i'beta) (t_i^rho - entry_i^rho)]
# with nlminb (analytic gradient) and Newton steps; covariance = inverse of the numerical Hessian (optimHess
# on the analytic gradient, accurate to about 1e-7 relative).
loglik_ph <- function(p, w = rep(1, nrow(d)), entry = d$entry) {
  eta <- p[1] * d$x1 + p[2] * d$x2 + p[3]; rho <- exp(p[4])
  sum(w * (d$status * (eta + p[4] + (rho - 1) * log(d$time)) - exp(eta) * (d$time^rho - entry^rho)))
}
grad_ph <- function(p, w = rep(1, nrow(d)), entry = d$entry) {
  eta <- p[1] * d$x1 + p[2] * d$x2 + p[3]; rho <- exp(p[4])
  la <- ifelse(entry > 0, log(pmax(entry, 1e-300)), 0)
  q <- exp(eta) * d$time^rho; qa <- exp(eta) * entry^rho
  ge <- w * (d$status - q + qa)
  c(sum(ge * d$x1), sum(ge * d$x2), sum(ge),
    sum(w * (d$status * (1 + rho * log(d$time)) - rho * (q * log(d$time) - qa * la))))
}
fit_truncated <- function(name, w = rep(1, nrow(d))) {
  start <- to_ph(c(coef(m0), log(m0$scale)))
  opt <- nlminb(start, function(p) -loglik_ph(p, w), function(p) -grad_ph(p, w),
                control = list(rel.tol = 1e-15, x.tol = 1e-12, eval.max = 1000, iter.max = 1000))
  hess <- function(p) optimHess(p, function(p) loglik_ph(p, w), function(p) grad_ph(p, w),
                                 control = list(fnscale = -1, ndeps = rep(1e-5, 4)))
  p <- opt$par
  for (i in 1:5) p <- p - solve(hess(p), grad_ph(p, w))   # Newton polish: the exact gradient goes to 0
  stopifnot(max(abs(grad_ph(p, w))) < 1e-9)
  V <- solve(-hess(p))
  out[[name]] <<- data.frame(model = name, term = terms, estimate = p, std_error = sqrt(diag(V)),
                             cov_x1 = V[, 1], cov_x2 = V[, 2], cov_log_lambda = V[, 3], cov_log_rho = V[, 4],
                             loglik = loglik_ph(p, w))
}
# check of the hand-written likelihood: without entry it is survreg's (on the time scale)
stopifnot(abs(loglik_ph(to_ph(c(coef(m0), log(m0$scale))), entry = 0) - m0$loglik[2]) < 1e-8)
fit_truncated("entry")
fit_truncated("entry_weights", d$w)

# AIC and BIC as R's AIC(fit), BIC(fit) for survreg: df = p + 2 (coefficients with the intercept, and
# log(scale)); BIC's n is nobs.survreg, the number of rows (also with case weights)
ic <- function(name, fit) data.frame(model = name, loglik = fit$loglik[2], df = attr(logLik(fit), "df"),
                                     nobs = nobs(fit), aic = AIC(fit), bic = BIC(fit))
write.csv(format(rbind(ic("plain", m0), ic("weights", mw)), digits = 15), "weibull_ic.csv", row.names = FALSE,
          quote = FALSE)

res <- do.call(rbind, out)
write.csv(format(res, digits = 15), "weibull_reference.csv", row.names = FALSE, quote = FALSE)
cat("survival", as.character(packageVersion("survival")), "\n")
print(res[, 1:5])
