# Reference values for NegativeBinomialMixed with more than 8,000 levels beside its largest factor
# (tests/test_glmm_sparse.py): glmmTMB (Laplace, TMB's sparse Cholesky) on the pupil-years of make_data.py.
# Run from this folder:   python make_data.py && Rscript glmm_sparse.R
# Writes glmm_sparse_reference.json (pupil_years.csv, which make_data.py writes, is not kept: the test
# regenerates the data and checks it against the fingerprint stored here).
#
# glmmTMB's nlminb stops with a gradient of ~1e-3 or so, which moves estimates by ~1e-5 (relative); the fit is
# therefore polished with Newton steps on TMB's own objective and exact gradient (the Hessian by optimHess, as
# sdreport) and its sdreport recomputed there (as ../glmm_slopes/glmm_slopes.R). What glmmTMB reported before
# the polish is kept ("reported", with its max |gradient|); its convergence code, pdHess and warnings are kept
# in "conv" and must be clean.
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
py <- read.csv("pupil_years.csv")
fingerprint <- list(rows = nrow(py), levels = list(pupil = length(unique(py$pupil)), po = length(unique(py$po)),
                                                   vo = length(unique(py$vo))),
                    sum_y = sum(py$y), sum_days = sum(py$days), sum_x1 = round(sum(py$x1), 4), sum_vo = sum(py$vo))
py$pupil <- factor(py$pupil); py$po <- factor(py$po); py$vo <- factor(py$vo)

caught <- character(0); msgs <- character(0)
started <- proc.time()[["elapsed"]]
# glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | pupil) + (1 | po) + (1 | vo), py, family = nbinom2)
fit <- withCallingHandlers(
  glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | pupil) + (1 | po) + (1 | vo), py, family = nbinom2,
          control = glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4))),
  warning = function(w) { caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning") },
  message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
seconds <- proc.time()[["elapsed"]] - started

obj <- fit$obj; par <- fit$fit$par
vcs <- function(f) sapply(c("pupil", "po", "vo"), function(k) VarCorr(f)$cond[[k]][1, 1])
reported <- list(fixed = as.list(fixef(fit)$cond), variance = as.list(vcs(fit)), dispersion = sigma(fit),
                 loglik = as.numeric(logLik(fit)), max_grad = max(abs(obj$gr(par))),
                 convergence = fit$fit$convergence, message = fit$fit$message, pdHess = fit$sdr$pdHess)
for (i in 1:20) {                      # Newton polish on TMB's objective
  step <- solve(optimHess(par, obj$fn, obj$gr), as.numeric(obj$gr(par)))
  par <- par - step
  if (max(abs(step)) < 1e-12) break
}
fit$fit$objective <- obj$fn(par)
fit$fit$par <- par
fit$fit$parfull <- obj$env$last.par
fit$sdr <- TMB::sdreport(obj, par.fixed = par)
reported$newton_steps <- i

b <- fixef(fit)$cond; V <- vcov(fit)$cond; Vf <- vcov(fit, full = TRUE)
re <- ranef(fit)$cond
every <- function(r, by) { idx <- seq(1, nrow(r), by = by); as.list(setNames(r[idx, 1], rownames(r)[idx])) }
out <- list(
  call = "glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | pupil) + (1 | po) + (1 | vo), py, family = nbinom2)",
  fingerprint = fingerprint,
  r_version = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
  TMB = as.character(packageVersion("TMB")), seconds = seconds,
  loglik = as.numeric(logLik(fit)), fixed = as.list(b), std_error = as.list(sqrt(diag(V))),
  variance = as.list(vcs(fit)), dispersion = sigma(fit),
  # the SEs of glmmTMB's parameters log(sd) (theta) and log(dispersion) (betad)
  se_log_sd = as.list(setNames(sqrt(diag(Vf))[grepl("^theta", colnames(Vf))], c("pupil", "po", "vo"))),
  se_log_dispersion = unname(sqrt(diag(Vf))[grepl("^d~|betad|^disp", colnames(Vf))][1]),
  max_grad = max(abs(obj$gr(par))),
  conv = list(code = fit$fit$convergence, message = fit$fit$message, pdHess = fit$sdr$pdHess,
              warnings = caught, messages = msgs),
  reported = reported,
  ranef = list(pupil = every(re$pupil, 1000), po = every(re$po, 250), vo = every(re$vo, 100)))
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "glmm_sparse_reference.json")
cat("glmmTMB", seconds, "s; max |gradient| after the polish", out$max_grad, "\n")
