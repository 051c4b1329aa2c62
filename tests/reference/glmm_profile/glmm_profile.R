# Reference values for the profile-likelihood intervals of PoissonMixed, BinomialMixed and NegativeBinomialMixed
# (tests/test_glmm_profile.py): lme4's confint(glmer(...), method = "profile") and glmmTMB's
# confint(glmmTMB(..., family = nbinom2), method = "profile"), and the same limits found by root-finding.
# Run from this folder:   Rscript glmm_profile.R       (R with lme4, glmmTMB, minqa, jsonlite)
# Reads the data of ../glmm, ../binomial_mixed and ../glmm_slopes (no new data); writes glmm_profile_reference.json.
#
# The profile of a parameter is zeta(x) = sign(x - estimate) sqrt(min deviance with the parameter at x - deviance at
# the optimum), the minimum over all other parameters (SDs >= 0, correlations in [-1, 1], fixed effects, log theta),
# with the Laplace deviance (the quadrature one for pois_agq10); the 95% interval is where |zeta| <= qnorm(0.975).
#
# "profile": R's own confint(method = "profile"). Both packages read the limits off an interpolating spline through
# the profile on a grid; and lme4's profile evaluates the deviance with getME(fit, "devfun"), which is rebuilt with
# the default PIRLS tolerance (tolPwrss = 1e-7) whatever the fit's control, so its deviance is off by up to ~6e-4
# near the optimum. Their limits are therefore accurate to ~1e-3 (relative) only ("max_rel_diff_profile" per model).
# "tight": the limits as roots of zeta(x) = -+qnorm(0.975), found by uniroot (tol 1e-11) on the same deviance
# functions: lme4's devfun2(fit) (the function profile.merMod minimises) with its PIRLS tolerance set to 1e-14, each
# zeta minimised over the other parameters by minqa::bobyqa (rhoend 1e-10) within profile.merMod's bounds; for
# glmmTMB TMB's objective fit$obj (the parameter fixed, the others free, i.e. what glmmTMB's map does) minimised by
# nlminb with TMB's exact gradient and Newton steps, the glmmTMB profile being on log SD and log theta.
# The optimum itself is recomputed the same way (its deviance "base_deviance"). A variance whose profile stays below
# the cut-off down to 0 has the lower limit 0 (as lme4).
# Every fit's convergence code, warnings and messages are kept ("conv"); the script stops unless every fit converged
# (the boundary model "pois_boundary" must give lme4's "boundary (singular) fit" message and no other).
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(minqa); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
LEVEL <- 0.95
Z <- qnorm((1 + LEVEL) / 2)

sg <- read.csv("../glmm/poisson_small_groups.csv"); sg$school <- factor(sg$school)
cbpp <- read.csv("../binomial_mixed/cbpp.csv"); cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
cbpp$obs <- factor(seq_len(nrow(cbpp)))
epil <- read.csv("../glmm_slopes/epil.csv"); epil$subject <- factor(epil$subject); epil$Visit <- (epil$period - 2.5) / 5
nb <- read.csv("../glmm/nb_school.csv"); nb$school <- factor(nb$school)
# four exact copies of the small-groups data, a "batch" per copy: the batch variance is estimated at 0
sg4 <- do.call(rbind, lapply(0:3, function(b) transform(sg, batch = b))); sg4$batch <- factor(sg4$batch)

# glmer with bobyqa (minqa) and tight tolerances: nloptwrap (even with xtol_abs = 1e-12) stops on the boundary
# model at a deviance 5e-3 above the optimum in some runs and not in others, and lme4's profile of that fit then
# stops with "profiling detected new, lower deviance"
ctl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
tmb_ctl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4))

fit_quietly <- function(expr) {       # keep every warning and message R gives
  caught <- character(0); msgs <- character(0)
  fit <- withCallingHandlers(expr,
    warning = function(w) { caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(fit = fit, warnings = caught, messages = msgs)
}
ci_list <- function(ci) lapply(seq_len(nrow(ci)), function(i) list(parameter = rownames(ci)[i],
                                                                     low = ci[i, 1], high = ci[i, 2]))
near <- function(store, x) {          # the stored start nearest to x
  if (length(store$x) == 0) return(NULL)
  store$par[[which.min(abs(store$x - x))]]
}

# the two ends of the interval of parameter w: roots of zeta(x) = -z and +z, bracketed by the estimate and a point
# beyond R's own (spline) limit
roots <- function(zeta, w, est, lo_bound, up_bound, default) {
  ends <- c(NA_real_, NA_real_)
  for (side in c(-1, 1)) {
    bound <- if (side < 0) lo_bound else up_bound
    lim <- default[(side + 3) / 2]       # NA where R's profile failed: a guess, extended by uniroot
    if (is.na(lim)) lim <- est + side * max(abs(est), 0.5)
    # at a bound (an SD at 0) when R's own limit is there: the bound if the profile stays below the cut-off
    if (is.finite(bound) && (est == bound || (lim == bound && side * zeta(w, bound) < Z))) {
      ends[(side + 3) / 2] <- bound; next }
    far <- est + 1.5 * (lim - est)
    if (is.finite(bound)) far <- if (side < 0) max(far, bound) else min(far, bound)
    f <- function(x) zeta(w, x) - side * Z
    ends[(side + 3) / 2] <- uniroot(f, sort(c(est, far)), tol = 1e-11, maxiter = 200, extendInt = "yes")$root
  }
  ends
}

# ---- lme4: devfun2 (SDs, correlations and fixed effects), minimised by bobyqa
tight_glmer <- function(fit, default, which) {
  dd <- lme4:::devfun2(fit, useSc = FALSE, signames = FALSE)
  inner <- environment(environment(dd)$d0)
  inner$tolPwrss <- 1e-14; inner$maxit <- 1000L
  opt <- attr(dd, "optimum"); np <- length(opt); nvp <- length(getME(fit, "theta"))
  lower <- c(pmax(fit@lower, -1), rep(-Inf, np - nvp))
  upper <- c(ifelse(fit@lower == 0, Inf, 1), rep(Inf, np - nvp))
  minimise <- function(fn, start, lo, up) {
    start <- pmin(pmax(start, lo), up)
    r <- bobyqa(start, fn, lower = lo, upper = up, control = list(rhobeg = 2e-3, rhoend = 1e-10, maxfun = 1e5))
    list(par = r$par, fval = r$fval)
  }
  b <- minimise(dd, opt, lower, upper)
  hat <- setNames(b$par, names(opt)); base <- b$fval
  stores <- lapply(seq_len(np), function(i) list(x = numeric(0), par = list()))
  zeta <- function(w, x) {
    start <- near(stores[[w]], x); if (is.null(start)) start <- hat[-w]
    fn <- function(p) { full <- hat; full[w] <- x; full[-w] <- p; dd(full) }
    r <- minimise(fn, start, lower[-w], upper[-w])
    stores[[w]]$x <<- c(stores[[w]]$x, x); stores[[w]]$par[[length(stores[[w]]$x)]] <<- r$par
    if (r$fval - base < -1e-7) stop("a lower deviance than at the optimum, profiling ", names(opt)[w])
    sign(x - hat[w]) * sqrt(max(r$fval - base, 0))
  }
  out <- lapply(which, function(w) {
    ends <- roots(zeta, w, hat[w], lower[w], upper[w], default[w, ])
    list(parameter = names(opt)[w], low = ends[1], high = ends[2])
  })
  list(ci = out, estimate = as.list(hat), base_deviance = base,
       base_deviance_reported = -2 * as.numeric(logLik(fit)),
       devfun2_at_reported_optimum_default_tolerance = attr(lme4:::devfun2(fit, useSc = FALSE), "basedev"))
}

# ---- glmmTMB: TMB's objective with one parameter fixed (internal scale: beta, log theta, log SD)
polish_tmb <- function(obj, par) {    # Newton steps on TMB's objective
  for (i in 1:30) {
    step <- solve(optimHess(par, obj$fn, obj$gr), as.numeric(obj$gr(par)))
    par <- par - step
    if (max(abs(step)) < 1e-12) break
  }
  par
}
tight_tmb <- function(fit, default, labels) {
  obj <- fit$obj
  hat <- polish_tmb(obj, fit$fit$par); base <- 2 * obj$fn(hat)
  np <- length(hat)
  stores <- lapply(seq_len(np), function(i) list(x = numeric(0), par = list()))
  zeta <- function(w, x) {
    start <- near(stores[[w]], x); if (is.null(start)) start <- hat[-w]
    full <- function(p) { q <- hat; q[w] <- x; q[-w] <- p; q }
    fn <- function(p) obj$fn(full(p))
    gr <- function(p) as.numeric(obj$gr(full(p)))[-w]
    r <- nlminb(start, fn, gr, control = list(rel.tol = 1e-14, eval.max = 1e4, iter.max = 1e4))
    p <- r$par
    for (i in 1:5) {                  # Newton steps from nlminb's stopping point
      g <- gr(p); if (max(abs(g)) < 1e-9) break
      p <- p - solve(optimHess(p, fn, gr), g)
    }
    dev <- 2 * fn(p)
    stores[[w]]$x <<- c(stores[[w]]$x, x); stores[[w]]$par[[length(stores[[w]]$x)]] <<- p
    if (dev - base < -1e-7) stop("a lower deviance than at the optimum, profiling ", labels[w])
    sign(x - hat[w]) * sqrt(max(dev - base, 0))
  }
  out <- lapply(seq_len(np), function(w) {
    ends <- roots(zeta, w, hat[w], -Inf, Inf, default[w, ])
    list(parameter = labels[w], low = ends[1], high = ends[2], internal_low = ends[1], internal_high = ends[2],
         scale = if (names(hat)[w] == "beta") "identity" else "log")
  })
  for (k in seq_along(out)) if (out[[k]]$scale == "log") { out[[k]]$low <- exp(out[[k]]$low)
                                                            out[[k]]$high <- exp(out[[k]]$high) }
  est <- ifelse(names(hat) == "beta", hat, exp(hat))
  list(ci = out, estimate = as.list(setNames(est, labels)), base_deviance = base,
       base_deviance_reported = -2 * as.numeric(logLik(fit)), max_grad_reported = max(abs(obj$gr(fit$fit$par))),
       max_grad = max(abs(obj$gr(hat))))
}

models <- list()
run <- function(name) length(args) == 0 || name %in% args
add_glmer <- function(name, call, data, formula_py, groups_py, kind, trials = NULL, exposure = NULL, which = NULL,
                      note = NULL) {
  if (!run(name)) return(invisible())
  t0 <- Sys.time()
  res <- fit_quietly(call); fit <- res$fit
  wald <- confint(fit, method = "Wald", oldNames = FALSE)
  nptot <- nrow(wald)
  which <- if (is.null(which)) seq_len(nptot) else which
  prof <- tryCatch(fit_quietly(confint(fit, parm = which, method = "profile", oldNames = FALSE)),
                   error = function(e) list(fit = NULL, error = conditionMessage(e)))
  default <- matrix(NA_real_, nptot, 2, dimnames = list(rownames(wald), NULL))
  if (!is.null(prof$fit)) default[which, ] <- as.matrix(prof$fit)
  tight <- tight_glmer(fit, default, which)
  for (k in seq_along(tight$ci)) tight$ci[[k]]$parameter <- rownames(wald)[which[k]]
  models[[name]] <<- list(
    engine = "glmer", call = paste(deparse(substitute(call), width.cutoff = 500L), collapse = " "),
    n_agq = fit@devcomp$dims[["nAGQ"]],
    data = data, formula = formula_py, groups = groups_py, kind = kind, trials = trials, exposure = exposure,
    note = note, fixed = as.list(fixef(fit)), sdcor = as.list(lme4:::Cv_to_Sv(getME(fit, "theta"),
                                                                               lengths(fit@cnms))),
    loglik = as.numeric(logLik(fit)),
    tight = tight$ci, estimate = tight$estimate, base_deviance = tight$base_deviance,
    base_deviance_reported = tight$base_deviance_reported,
    basedev_of_lme4_profile = tight$devfun2_at_reported_optimum_default_tolerance,
    profile = if (is.null(prof$fit)) NULL else ci_list(prof$fit), profile_error = prof$error,
    profile_warnings = prof$warnings, profile_messages = prof$messages,
    wald = ci_list(wald),
    conv = list(code = fit@optinfo$conv$opt, lme4 = fit@optinfo$conv$lme4$messages, singular = isSingular(fit),
                warnings = res$warnings, messages = res$messages),
    seconds = as.numeric(difftime(Sys.time(), t0, units = "secs")))
}
add_tmb <- function(name, call, data, formula_py, groups_py, kind, exposure = NULL, labels) {
  if (!run(name)) return(invisible())
  t0 <- Sys.time()
  res <- fit_quietly(call); fit <- res$fit
  prof <- fit_quietly(confint(fit, method = "profile", full = TRUE))     # log SD and log theta, as glmmTMB
  pci <- as.matrix(prof$fit)[, 1:2]
  # glmmTMB orders its rows fixed effects, dispersion ("d~(Intercept)"), SD ("theta_1|school.1"): TMB's order
  stopifnot(nrow(pci) == length(fit$fit$par))
  tight <- tight_tmb(fit, pci, labels)
  prof_out <- ci_list(pci)
  for (k in seq_along(prof_out)) {
    prof_out[[k]]$parameter <- labels[k]
    if (tight$ci[[k]]$scale == "log") { prof_out[[k]]$low <- exp(prof_out[[k]]$low)
                                        prof_out[[k]]$high <- exp(prof_out[[k]]$high) }
  }
  # Wald intervals of the fixed effects at the polished optimum (TMB's sdreport there)
  fit$fit$par <- polish_tmb(fit$obj, fit$fit$par); fit$sdr <- TMB::sdreport(fit$obj, par.fixed = fit$fit$par)
  wald <- confint(fit, parm = "beta_", method = "wald")
  models[[name]] <<- list(
    engine = "glmmTMB", call = paste(deparse(substitute(call), width.cutoff = 500L), collapse = " "),
    data = data, formula = formula_py, groups = groups_py, kind = kind, exposure = exposure,
    fixed = as.list(fixef(fit)$cond), loglik = as.numeric(logLik(fit)),
    tight = tight$ci, estimate = tight$estimate, base_deviance = tight$base_deviance,
    base_deviance_reported = tight$base_deviance_reported,
    max_grad_reported = tight$max_grad_reported, max_grad = tight$max_grad,
    profile = prof_out, profile_warnings = prof$warnings, profile_messages = prof$messages,
    wald = lapply(seq_len(nrow(wald)), function(i) list(parameter = labels[i], low = wald[i, 1], high = wald[i, 2])),
    conv = list(code = res$fit$fit$convergence, message = res$fit$fit$message, pdHess = res$fit$sdr$pdHess,
                warnings = res$warnings, messages = res$messages),
    seconds = as.numeric(difftime(Sys.time(), t0, units = "secs")))
}

# ---- random intercepts
add_glmer("pois_ri", glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), sg, family = poisson,
                           control = ctl),
          "../glmm/poisson_small_groups.csv", "y ~ x1 + x2 + treat", "school", "poisson", exposure = "days")
add_glmer("cbpp_ri", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                           control = ctl),
          "../binomial_mixed/cbpp.csv", "incidence ~ period", "herd", "binomial", trials = "size")
# the observation-level random effect of lme4's cbpp example: the herd SD's profile stays below the cut-off down to 0
add_glmer("cbpp_olre", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs), cbpp,
                             family = binomial, control = ctl),
          "../binomial_mixed/cbpp.csv", "incidence ~ period", c("herd", "obs"), "binomial", trials = "size",
          note = "obs = 1..56, one level per row")
# adaptive Gauss-Hermite quadrature (nAGQ = 10): lme4's devfun2 is then the quadrature deviance
add_glmer("pois_agq10", glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), sg, family = poisson,
                              nAGQ = 10, control = ctl),
          "../glmm/poisson_small_groups.csv", "y ~ x1 + x2 + treat", "school", "poisson", exposure = "days",
          note = "n_agq = 10; lme4's deviance omits the saturated log-likelihood, so base_deviance is not -2 logLik")
# ---- a random slope, correlated with the intercept (Breslow & Clayton's epilepsy trial)
add_glmer("epil_slope", glmer(y ~ lbase * trt + lage + Visit + (Visit | subject), epil, family = poisson,
                              control = ctl),
          "../glmm_slopes/epil.csv", "y ~ lbase * trt + lage + Visit", "(Visit | subject)", "poisson")
# ---- a variance on its boundary: only the two SDs are profiled
add_glmer("pois_boundary", glmer(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school) + (1 | batch), sg4,
                                 family = poisson, control = ctl),
          "../glmm/poisson_small_groups.csv", "y ~ x1 + x2 + treat", c("school", "batch"), "poisson",
          exposure = "days", which = 1:2,
          note = "four copies of the data, batch = 0..3 (one per copy): the batch SD is estimated at 0")
# ---- negative binomial (glmmTMB): fixed effects, the SD and theta
add_tmb("nb_ri", glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | school), nb, family = nbinom2,
                         control = tmb_ctl),
        "../glmm/nb_school.csv", "y ~ x1 + x2 + treat", "school", "nb", exposure = "days",
        labels = c("(Intercept)", "x1", "x2", "treat", "dispersion", "sd_(Intercept)|school"))

rel_diff <- function(a, b) {          # largest relative difference between two lists of limits (finite, non-zero)
  d <- unlist(lapply(seq_along(a), function(i) {
    x <- c(a[[i]]$low, a[[i]]$high); y <- c(b[[i]]$low, b[[i]]$high)
    ok <- is.finite(x) & is.finite(y) & abs(y) > 0
    abs(x[ok] - y[ok]) / abs(y[ok])
  }))
  if (length(d)) max(d) else NA
}
for (m in names(models)) {
  md <- models[[m]]
  if (is.null(md$profile)) md$profile <- list()
  prof_sel <- md$profile
  tight_by <- setNames(md$tight, vapply(md$tight, `[[`, "", "parameter"))
  prof_sel <- prof_sel[vapply(prof_sel, function(r) r$parameter %in% names(tight_by), TRUE)]
  models[[m]]$max_rel_diff_profile <- rel_diff(prof_sel, tight_by[vapply(prof_sel, `[[`, "", "parameter")])
  cv <- md$conv
  singular_msg <- "boundary (singular) fit: see help('isSingular')"
  ok <- if (md$engine == "glmer") cv$code == 0 && length(cv$warnings) == 0 &&
    (if (m == "pois_boundary") identical(cv$messages, singular_msg) && identical(unlist(cv$lme4), singular_msg)
     else length(cv$lme4) == 0 && length(cv$messages) == 0 && !cv$singular)
  else cv$code == 0 && isTRUE(cv$pdHess) && length(cv$warnings) == 0
  cat(sprintf("%-14s %6.1f s  converged %s  base deviance %.8f (reported %.8f)  R's profile vs tight: %.1e  %s\n",
              m, md$seconds, ok, md$base_deviance, md$base_deviance_reported, models[[m]]$max_rel_diff_profile,
              paste(c(md$profile_warnings, md$profile_messages), collapse = "; ")))
  if (!ok) stop("the fit of ", m, " did not converge cleanly: ", paste(unlist(cv), collapse = "; "))
}

if (length(args) > 0) {            # a trial run of some models (named on the command line): not the reference
  partial <- file.path(tempdir(), "glmm_profile_partial.json")
  write_json(models, partial, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")
  cat("wrote", partial, "\n")
}
if (length(args) == 0) {
  out <- list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
              glmmTMB = as.character(packageVersion("glmmTMB")), TMB = as.character(packageVersion("TMB")),
              minqa = as.character(packageVersion("minqa")), jsonlite = as.character(packageVersion("jsonlite")),
              level = LEVEL, models = models)
  write_json(out, "glmm_profile_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")
}
