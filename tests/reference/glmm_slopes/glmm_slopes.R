# Reference values for PoissonMixed, NegativeBinomialMixed and BinomialMixed with random slopes and correlated
# random effects (R glmmTMB and lme4::glmer, Laplace).
# Run from this folder:   python make_data.py && Rscript glmm_slopes.R
# Writes epil.csv (MASS::epil), owls.csv (glmmTMB::Owls), cbpp.csv (lme4::cbpp), contraception.csv
# (mlmRev::Contraception), all exported, and glmm_slopes_reference.json.
#
# glmer runs with tight tolerances (as ../binomial_mixed/binomial_mixed.R): nloptwrap with xtol_abs = 1e-12 and
# tolPwrss = 1e-12. Its vcov() comes from lme4's own finite-difference Hessian of the deviance (relative error up
# to ~1e-3 here; numDeriv's Hessian of the same deviance function moves by as much with its step, as the deviance
# carries the error of the inner PIRLS iteration), so every glmer model has a glmmTMB twin (the same Laplace
# likelihood) whose SEs come from TMB's exact gradient.
# glmmTMB (nlminb, its default rel.tol = 1e-10; tighter ones end in "singular convergence" at the same point)
# stops with a gradient of up to ~1e-2, which moves some estimates by ~1e-4 (relative); each glmmTMB fit is
# therefore polished with Newton steps on TMB's own objective and exact gradient (the Hessian by optimHess, as
# sdreport) and its sdreport recomputed there. What glmmTMB reported before the polish is kept ("reported", with
# its max |gradient|); the polish moves the log-likelihood by less than 1e-6.
# Every fit keeps R's warnings and messages, its convergence code and whether it is singular ("conv"); the tests
# require a converged, non-singular fit without warnings, except for "epil_nb_tmb", which is kept as a boundary
# case (glmmTMB's slope variance goes to 0 with a correlation of -1: "singular convergence"; not polished: its
# Hessian is singular there).
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite); library(MASS)})
py <- read.csv("pupil_years.csv"); py$school <- factor(py$school); py$vo <- factor(py$vo)
data(epil, package = "MASS"); write.csv(epil, "epil.csv", row.names = FALSE)
epil <- read.csv("epil.csv"); epil$subject <- factor(epil$subject); epil$Visit <- (epil$period - 2.5) / 5
data(Owls, package = "glmmTMB")
write.csv(Owls[, c("Nest", "FoodTreatment", "SexParent", "ArrivalTime", "SiblingNegotiation", "BroodSize")],
          "owls.csv", row.names = FALSE)
owls <- read.csv("owls.csv", stringsAsFactors = TRUE); owls$at <- owls$ArrivalTime - 24
data(cbpp, package = "lme4"); write.csv(cbpp, "cbpp.csv", row.names = FALSE)
cbpp <- read.csv("cbpp.csv"); cbpp$herd <- factor(cbpp$herd)
data(Contraception, package = "mlmRev")
write.csv(Contraception, "contraception.csv", row.names = FALSE)
contra <- read.csv("contraception.csv", colClasses = c(livch = "factor", urban = "factor", use = "factor"))
contra$district <- factor(contra$district); contra$use01 <- as.numeric(contra$use == "Y")
contra$age10 <- contra$age / 10       # age (centred) in decades: with age in years glmer warns "very large eigenvalue"

ctl <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-12,
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
tmb_ctl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4))

fit_quietly <- function(expr) {       # keep every warning and message R gives
  caught <- character(0); msgs <- character(0)
  fit <- withCallingHandlers(expr,
    warning = function(w) { caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(fit = fit, warnings = caught, messages = msgs)
}
sdcor <- function(vc) {               # per factor: SDs and the correlation matrix (rows/columns by R's names)
  lapply(vc, function(v) list(sd = as.list(attr(v, "stddev")),
                              cor = if (length(attr(v, "stddev")) > 1) {
                                C <- attr(v, "correlation"); lapply(seq_len(nrow(C)), function(i) as.list(C[i, ]))
                              } else NULL))
}

polish_tmb <- function(fit) {         # Newton steps on TMB's objective from glmmTMB's optimum
  obj <- fit$obj; par <- fit$fit$par
  before <- list(fixed = as.list(fixef(fit)$cond), loglik = as.numeric(logLik(fit)),
                 max_grad = max(abs(obj$gr(par))), sdcor = sdcor(VarCorr(fit)$cond))
  for (i in 1:20) {
    step <- solve(optimHess(par, obj$fn, obj$gr), as.numeric(obj$gr(par)))
    par <- par - step
    if (max(abs(step)) < 1e-12) break
  }
  fit$fit$objective <- obj$fn(par)
  fit$fit$par <- par
  fit$fit$parfull <- obj$env$last.par
  fit$sdr <- TMB::sdreport(obj, par.fixed = par)
  before$newton_steps <- i
  list(fit = fit, reported = before, max_grad = max(abs(obj$gr(par))))
}

models <- list()
add <- function(name, call, data_file, formula_py, groups_py = NULL, kind, trials = NULL, exposure = NULL,
                offset = NULL, note = NULL, polish = TRUE) {
  res <- fit_quietly(call); fit <- res$fit
  out <- list(call = paste(deparse(substitute(call), width.cutoff = 500L), collapse = " "), data = data_file,
              formula = formula_py, groups = groups_py, kind = kind, trials = trials, exposure = exposure,
              offset = offset, note = note, loglik = as.numeric(logLik(fit)), npar = attr(logLik(fit), "df"),
              aic = AIC(fit), bic = BIC(fit))
  if (inherits(fit, "glmmTMB")) {
    if (polish) {
      pol <- polish_tmb(fit); fit <- pol$fit
      out$reported <- pol$reported; out$max_grad <- pol$max_grad
      out$loglik <- as.numeric(logLik(fit)); out$aic <- AIC(fit); out$bic <- BIC(fit)
    } else out$max_grad <- max(abs(fit$obj$gr(fit$fit$par)))
    b <- fixef(fit)$cond; V <- vcov(fit)$cond; vc <- VarCorr(fit)$cond; re <- ranef(fit)$cond
    Vf <- vcov(fit, full = TRUE); th <- fit$fit$par[names(fit$fit$par) == "theta"]
    se_th <- sqrt(diag(Vf))[grepl("^theta", colnames(Vf))]
    out$theta_tmb <- unname(th); out$se_theta_tmb <- unname(se_th)
    if (family(fit)$family == "nbinom2") out$dispersion <- sigma(fit)
    ci <- confint(fit, parm = "theta_", method = "wald")
    out$confint_theta <- lapply(seq_len(nrow(ci)), function(i) list(name = rownames(ci)[i], low = ci[i, 1],
                                                                   high = ci[i, 2], estimate = ci[i, 3]))
    out$conv <- list(code = fit$fit$convergence, message = fit$fit$message, pdHess = fit$sdr$pdHess,
                     warnings = res$warnings, messages = res$messages)
    out$engine <- "glmmTMB"
  } else {
    b <- fixef(fit); V <- as.matrix(vcov(fit)); vc <- VarCorr(fit); re <- ranef(fit)
    out$theta_lme4 <- as.list(getME(fit, "theta"))
    out$conv <- list(code = fit@optinfo$conv$opt, lme4 = fit@optinfo$conv$lme4$messages, singular = isSingular(fit),
                     warnings = res$warnings, messages = res$messages)
    out$engine <- "glmer"
  }
  out$fixed <- as.list(b); out$std_error <- as.list(sqrt(diag(V))); out$varcorr <- sdcor(vc)
  out$ranef <- lapply(re, function(r) lapply(as.list(r), function(col) as.list(setNames(col, rownames(r)))))
  models[[name]] <<- out
}

# ---- simulated pupil-years (make_data.py): NB2 and Poisson counts over enrolled days
add("nb_tmb", glmmTMB(y_nb ~ x1 + x2 + treat + offset(log(days)) + (x1 | school), py, family = nbinom2,
                      control = tmb_ctl),
    "pupil_years.csv", "y_nb ~ x1 + x2 + treat", "(x1 | school)", "nb", exposure = "days")
add("nb_uncor_tmb", glmmTMB(y_nb ~ x1 + x2 + treat + offset(log(days)) + diag(1 + x1 | school), py,
                            family = nbinom2, control = tmb_ctl),
    "pupil_years.csv", "y_nb ~ x1 + x2 + treat", "(x1 || school)", "nb", exposure = "days")
add("nb_crossed_tmb", glmmTMB(y_nb ~ x1 + x2 + treat + offset(log(days)) + (x1 | school) + (1 | vo), py,
                              family = nbinom2, control = tmb_ctl),
    "pupil_years.csv", "y_nb ~ x1 + x2 + treat", "(x1 | school) + (1 | vo)", "nb", exposure = "days")
add("pois_glmer", glmer(y_pois ~ x1 + x2 + treat + offset(log(days)) + (x1 | school), py, family = poisson,
                        control = ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + treat", "(x1 | school)", "poisson", exposure = "days")
add("pois_tmb", glmmTMB(y_pois ~ x1 + x2 + treat + offset(log(days)) + (x1 | school), py, family = poisson,
                        control = tmb_ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + treat", "(x1 | school)", "poisson", exposure = "days")
add("pois3_glmer", glmer(y_pois ~ x1 + x2 + x3 + treat + offset(log(days)) + (x1 + x3 | school), py,
                         family = poisson, control = ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + x3 + treat", "(x1 + x3 | school)", "poisson", exposure = "days")
add("pois3_tmb", glmmTMB(y_pois ~ x1 + x2 + x3 + treat + offset(log(days)) + (x1 + x3 | school), py,
                         family = poisson, control = tmb_ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + x3 + treat", "(x1 + x3 | school)", "poisson", exposure = "days")
add("pois_uncor_glmer", glmer(y_pois ~ x1 + x2 + treat + offset(log(days)) + (x1 || school), py, family = poisson,
                              control = ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + treat", "(x1 || school)", "poisson", exposure = "days")
add("pois_uncor_tmb", glmmTMB(y_pois ~ x1 + x2 + treat + offset(log(days)) + diag(1 + x1 | school), py,
                              family = poisson, control = tmb_ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + treat", "(x1 || school)", "poisson", exposure = "days")
add("pois_crossed_glmer", glmer(y_pois ~ x1 + x2 + treat + offset(log(days)) + (1 | vo) + (x1 + x3 | school), py,
                                family = poisson, control = ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + treat", "(1 | vo) + (x1 + x3 | school)", "poisson", exposure = "days")
add("pois_crossed_tmb", glmmTMB(y_pois ~ x1 + x2 + treat + offset(log(days)) + (1 | vo) + (x1 + x3 | school), py,
                                family = poisson, control = tmb_ctl),
    "pupil_years.csv", "y_pois ~ x1 + x2 + treat", "(1 | vo) + (x1 + x3 | school)", "poisson", exposure = "days")

# ---- textbook data
# Breslow & Clayton (1993) epilepsy trial, model with a random slope of the visit (their model IV)
add("epil_glmer", glmer(y ~ lbase * trt + lage + Visit + (Visit | subject), epil, family = poisson, control = ctl),
    "epil.csv", "y ~ lbase * trt + lage + Visit", "(Visit | subject)", "poisson")
add("epil_tmb", glmmTMB(y ~ lbase * trt + lage + Visit + (Visit | subject), epil, family = poisson,
                        control = tmb_ctl),
    "epil.csv", "y ~ lbase * trt + lage + Visit", "(Visit | subject)", "poisson")
add("epil_nb_tmb", glmmTMB(y ~ lbase * trt + lage + Visit + (Visit | subject), epil, family = nbinom2,
                           control = tmb_ctl),
    "epil.csv", "y ~ lbase * trt + lage + Visit", "(Visit | subject)", "nb",
    note = "boundary: the slope variance goes to 0 (correlation -1); not a reference for the estimates",
    polish = FALSE)
# owl nestlings' sibling negotiation (Zuur et al. 2009; Brooks et al. 2017), NB2 with a random slope of arrival time
add("owls_tmb", glmmTMB(SiblingNegotiation ~ FoodTreatment * SexParent + at + offset(log(BroodSize)) + (at | Nest),
                        owls, family = nbinom2, control = tmb_ctl),
    "owls.csv", "SiblingNegotiation ~ FoodTreatment * SexParent + at", "(at | Nest)", "nb", offset = "log_brood")
# contagious bovine pleuropneumonia: the period as a number, with a random slope per herd
cbpp$period_numeric <- as.numeric(cbpp$period)
add("cbpp_glmer", glmer(cbind(incidence, size - incidence) ~ period_numeric + (period_numeric | herd), cbpp,
                        family = binomial, control = ctl),
    "cbpp.csv", "incidence ~ period_numeric", "(period_numeric | herd)", "binomial", trials = "size")
add("cbpp_tmb", glmmTMB(cbind(incidence, size - incidence) ~ period_numeric + (period_numeric | herd), cbpp,
                        family = binomial, control = tmb_ctl),
    "cbpp.csv", "incidence ~ period_numeric", "(period_numeric | herd)", "binomial", trials = "size")
# Bangladesh fertility survey (mlmRev): contraceptive use, urban/rural difference varying by district
add("contra_glmer", glmer(use01 ~ age10 + I(age10^2) + urban + livch + (urban | district), contra,
                          family = binomial, control = ctl),
    "contraception.csv", "use01 ~ age10 + I(age10 ** 2) + urban + livch", "(urban | district)", "binomial")
add("contra_tmb", glmmTMB(use01 ~ age10 + I(age10^2) + urban + livch + (urban | district), contra,
                          family = binomial, control = tmb_ctl),
    "contraception.csv", "use01 ~ age10 + I(age10 ** 2) + urban + livch", "(urban | district)", "binomial")

out <- list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
            glmmTMB = as.character(packageVersion("glmmTMB")), TMB = as.character(packageVersion("TMB")),
            jsonlite = as.character(packageVersion("jsonlite")), models = models)
write_json(out, "glmm_slopes_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")
for (m in names(models)) {
  cv <- models[[m]]$conv
  cat(sprintf("%-20s logLik %.6f  max|grad| %s -> %s  warnings: %s  messages: %s %s\n", m, models[[m]]$loglik,
              format(models[[m]]$reported$max_grad, digits = 2), format(models[[m]]$max_grad, digits = 2),
              paste(cv$warnings, collapse = "; "), paste(c(cv$messages, unlist(cv$lme4)), collapse = "; "),
              if (!is.null(cv$singular) && cv$singular) "SINGULAR" else ""))
}
