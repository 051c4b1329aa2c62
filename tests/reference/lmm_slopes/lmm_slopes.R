# Reference values for LinearMixed with random slopes and correlated random effects (R lme4::lmer, lmerTest
# Satterthwaite df, confint.merMod, anova) and for the likelihood-ratio comparisons of the GLMMs (glmer, glmmTMB).
# Run from this folder:   python make_data.py && Rscript lmm_slopes.R
# Writes sleepstudy.csv (lme4's sleepstudy, exported) and lmm_slopes_reference.json.
#
# Tolerances: lmer is run with bobyqa and rhoend = 1e-12 (as ../lmm/lmm.R), so the references are the optimum of
# the criterion, not wherever the default optimiser (nloptwrap) stops: on sleepstudy the default theta differs
# from the tight one by ~1e-5 relative (printed at the end, and kept in the JSON as default_theta_rel_diff).
# confint(method = "profile") uses the fit's optimiser and control for its inner fits, so the profiles are tight
# too; their intervals are read off an interpolating spline through the profile (lme4's default grid,
# delta.cutoff = 1/8); "profile_dense" repeats them on a grid 8 times finer (delta.cutoff = 1/64), and
# "profile_points" keeps the profile itself (as.data.frame(profile(fit))) for comparison point by point. Where
# that profile puts a correlation at +-1 (beyond |zeta| = 3.9 on sleepstudy) lme4's devfun2 evaluates another
# covariance: Sv_to_Cv's safe_chol takes a pivoted Cholesky of the singular matrix and reorders its columns only,
# which drops the slope variance (Sv_to_Cv(c(1.13, 1, 5, 26), n = 2, s = 26) gives theta = (0.0435, 0, 0)), so
# its deviance there is too large; the tests compare the points with every correlation inside (-1, 1).
# Every fit's convergence code, lme4 messages and warnings are kept ("conv"); the tests require none except
# the singular fit's "boundary (singular) fit" message.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(glmmTMB); library(jsonlite)})
data(sleepstudy, package = "lme4")
write.csv(sleepstudy, "sleepstudy.csv", row.names = FALSE)
ss <- read.csv("sleepstudy.csv"); ss$Subject <- factor(ss$Subject)
cs <- read.csv("crossed_slopes.csv")
sg <- read.csv("singular_slopes.csv")
ctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

fit_quietly <- function(expr) {       # keep every warning and message R gives
  caught <- character(0); msgs <- character(0)
  fit <- withCallingHandlers(expr,
    warning = function(w) { caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(fit = fit, warnings = caught, messages = msgs)
}

models <- list()
add <- function(name, call, data_file, formula_py, reml) {
  res <- fit_quietly(call); fit <- res$fit
  co <- coef(summary(fit))                    # lmerTest: Estimate, Std. Error, df (Satterthwaite)
  v <- as.data.frame(VarCorr(fit))
  v$grp <- sub("\\.[0-9]+$", "", v$grp)       # (x || g): lme4 names the second term's factor "g.1"
  re <- ranef(fit)
  models[[name]] <<- list(
    call = paste(deparse(substitute(call), width.cutoff = 500L), collapse = " "),
    data = data_file, formula = formula_py, reml = reml,
    fixed = setNames(as.list(co[, "Estimate"]), rownames(co)),
    std_error = setNames(as.list(co[, "Std. Error"]), rownames(co)), df = setNames(as.list(co[, "df"]), rownames(co)),
    loglik = as.numeric(logLik(fit)), aic = AIC(fit), bic = BIC(fit), npar = attr(logLik(fit), "df"),
    theta = as.list(getME(fit, "theta")), sigma = sigma(fit),
    varcorr = lapply(seq_len(nrow(v)), function(i) list(grp = v$grp[i], var1 = v$var1[i], var2 = v$var2[i],
                                                        vcov = v$vcov[i], sdcor = v$sdcor[i])),
    ranef = lapply(re, function(r) lapply(as.list(r), function(col) as.list(setNames(col, rownames(r))))),
    singular = isSingular(fit),
    conv = list(opt = fit@optinfo$conv$opt, lme4 = fit@optinfo$conv$lme4$messages,
                optimizer_message = fit@optinfo$message, warnings = res$warnings, messages = res$messages))
  fit
}

f <- list()
f$ss_reml <- add("ss_reml", lmer(Reaction ~ Days + (Days | Subject), ss, REML = TRUE, control = ctl),
                 "sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", TRUE)
f$ss_ml <- add("ss_ml", lmer(Reaction ~ Days + (Days | Subject), ss, REML = FALSE, control = ctl),
               "sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", FALSE)
f$ss_uncor_reml <- add("ss_uncor_reml", lmer(Reaction ~ Days + (Days || Subject), ss, REML = TRUE, control = ctl),
                       "sleepstudy.csv", "Reaction ~ Days + (Days || Subject)", TRUE)
f$ss_uncor_ml <- add("ss_uncor_ml", lmer(Reaction ~ Days + (Days || Subject), ss, REML = FALSE, control = ctl),
                     "sleepstudy.csv", "Reaction ~ Days + (Days || Subject)", FALSE)
f$ss_slope_reml <- add("ss_slope_reml", lmer(Reaction ~ Days + (0 + Days | Subject), ss, REML = TRUE, control = ctl),
                       "sleepstudy.csv", "Reaction ~ Days + (0 + Days | Subject)", TRUE)
f$ss_null_reml <- add("ss_null_reml", lmer(Reaction ~ 1 + (Days | Subject), ss, REML = TRUE, control = ctl),
                      "sleepstudy.csv", "Reaction ~ 1 + (Days | Subject)", TRUE)
f$cs_reml <- add("cs_reml", lmer(y ~ x1 + x2 + treat + (x1 | po) + (1 | vo), cs, REML = TRUE, control = ctl),
                 "crossed_slopes.csv", "y ~ x1 + x2 + treat + (x1 | po) + (1 | vo)", TRUE)
f$cs_ml <- add("cs_ml", lmer(y ~ x1 + x2 + treat + (x1 | po) + (1 | vo), cs, REML = FALSE, control = ctl),
               "crossed_slopes.csv", "y ~ x1 + x2 + treat + (x1 | po) + (1 | vo)", FALSE)
f$cs_uncor_reml <- add("cs_uncor_reml", lmer(y ~ x1 + x2 + treat + (x1 || po) + (1 | vo), cs, REML = TRUE,
                                             control = ctl),
                       "crossed_slopes.csv", "y ~ x1 + x2 + treat + (x1 || po) + (1 | vo)", TRUE)
f$cs_weights_reml <- add("cs_weights_reml", lmer(y ~ x1 + x2 + treat + (x1 | po) + (1 | vo), cs, REML = TRUE,
                                                 weights = w, control = ctl),
                         "crossed_slopes.csv", "y ~ x1 + x2 + treat + (x1 | po) + (1 | vo)", TRUE)
f$cs_vo_slope_ml <- add("cs_vo_slope_ml", lmer(y ~ x1 + x2 + treat + (x1 | po) + (x2 | vo), cs, REML = FALSE,
                                               control = ctl),
                        "crossed_slopes.csv", "y ~ x1 + x2 + treat + (x1 | po) + (x2 | vo)", FALSE)
# random intercepts only (../lmm/crossed.csv): the intervals of the intercept-only path
cr_int <- read.csv("../lmm/crossed.csv")
f$cr_int_reml <- add("cr_int_reml", lmer(y ~ x1 + x2 + treat + (1 | po) + (1 | vo), cr_int, REML = TRUE, control = ctl),
                     "../lmm/crossed.csv", "y ~ x1 + x2 + treat + (1 | po) + (1 | vo)", TRUE)
f$sg_reml <- add("sg_reml", lmer(y ~ x + (x | g), sg, REML = TRUE, control = ctl),
                 "singular_slopes.csv", "y ~ x + (x | g)", TRUE)

# ---- likelihood-ratio comparisons: anova(m0, m1) (REML fits are refitted by ML, with lme4's message)
tests <- list()
add_anova <- function(name, m0, m1, models_py) {
  res <- fit_quietly(anova(m0, m1))
  a <- res$fit                                # lme4: npar ... Df; glmmTMB: Df (= npar) ... Chi Df
  npar <- if ("npar" %in% names(a)) a$npar else a$Df
  df <- if ("Chi Df" %in% names(a)) a[["Chi Df"]][2] else a$Df[2]
  tests[[name]] <<- list(models = models_py, npar = npar, aic = a$AIC, bic = a$BIC, loglik = a$logLik,
                         deviance = a$deviance, chisq = a$Chisq[2], df = df, p = a[["Pr(>Chisq)"]][2],
                         messages = res$messages, warnings = res$warnings)
}
add_anova("ss_fixed", f$ss_null_reml, f$ss_reml, c("ss_null_reml", "ss_reml"))
add_anova("ss_cor", f$ss_uncor_reml, f$ss_reml, c("ss_uncor_reml", "ss_reml"))
add_anova("cs_cor", f$cs_uncor_reml, f$cs_reml, c("cs_uncor_reml", "cs_reml"))
# the same fixed effects: the REML criteria compared without refitting
add_anova_noref <- function(name, m0, m1, models_py) {
  res <- fit_quietly(anova(m0, m1, refit = FALSE)); a <- res$fit
  tests[[name]] <<- list(models = models_py, npar = a$npar, aic = a$AIC, bic = a$BIC, loglik = a$logLik,
                         deviance = a$deviance, chisq = a$Chisq[2], df = a$Df[2], p = a[["Pr(>Chisq)"]][2],
                         messages = res$messages, warnings = res$warnings, refit = FALSE)
}
add_anova_noref("ss_cor_reml", f$ss_uncor_reml, f$ss_reml, c("ss_uncor_reml", "ss_reml"))

# GLMMs (the data of ../glmm and ../binomial_mixed; fitted as there)
cbpp <- read.csv("../binomial_mixed/cbpp.csv"); cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
gctl <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-12,
                     optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
g1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, control = gctl)
g0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, family = binomial, control = gctl)
add_anova("cbpp_period", g0, g1, c("incidence ~ 1 | herd", "incidence ~ C(period) | herd"))
cr <- read.csv("../glmm/nb_crossed.csv"); cr$po <- factor(cr$po); cr$vo <- factor(cr$vo)
n1 <- glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | po) + (1 | vo), cr, family = nbinom2)
n0 <- glmmTMB(y ~ x1 + x2 + offset(log(days)) + (1 | po) + (1 | vo), cr, family = nbinom2)
add_anova("nb_treat", n0, n1, c("y ~ x1 + x2 | po + vo", "y ~ x1 + x2 + treat | po + vo"))
p1 <- glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | po) + (1 | vo), cr, family = poisson)
add_anova("poisson_vs_nb", p1, n1, c("poisson", "nbinom2"))

# ---- intervals: confint(fit, method = ..., oldNames = FALSE)
ci_list <- function(ci) lapply(seq_len(nrow(ci)), function(i) list(parameter = rownames(ci)[i],
                                                                     low = ci[i, 1], high = ci[i, 2]))
intervals <- list()
for (name in c("ss_reml", "ss_ml", "ss_uncor_reml", "cs_reml", "cr_int_reml")) {
  prof <- fit_quietly(confint(f[[name]], method = "profile", oldNames = FALSE))
  intervals[[name]] <- list(profile = ci_list(prof$fit), profile_warnings = prof$warnings,
                            wald = ci_list(confint(f[[name]], method = "Wald", oldNames = FALSE)))
}
for (name in c("ss_reml", "ss_uncor_reml")) {
  dense <- fit_quietly(confint(f[[name]], method = "profile", oldNames = FALSE, delta.cutoff = 1 / 64))
  intervals[[name]]$profile_dense <- ci_list(dense$fit)
  intervals[[name]]$profile_dense_warnings <- dense$warnings
}
pp <- as.data.frame(profile(f$ss_reml, signames = FALSE))
vp <- setdiff(names(pp), c(".zeta", ".par", ".focal"))
pts <- lapply(seq_len(nrow(pp)), function(i) {        # the profiled parameter, zeta, and where the others were
  par <- as.character(pp$.par[i])
  list(parameter = par, value = pp[i, par], zeta = pp$.zeta[i], at = as.list(pp[i, vp])) })

# how far lmer's default optimiser stops from the tight optimum (sleepstudy, REML)
d <- lmer(Reaction ~ Days + (Days | Subject), ss)
rel <- max(abs(getME(d, "theta") / getME(f$ss_reml, "theta") - 1))
cat("default vs tight (ss_reml): max rel. diff of theta", rel, "\n")

out <- list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
            lmerTest = as.character(packageVersion("lmerTest")), glmmTMB = as.character(packageVersion("glmmTMB")),
            jsonlite = as.character(packageVersion("jsonlite")), default_theta_rel_diff = rel,
            models = models, tests = tests, intervals = intervals, profile_points = list(ss_reml = pts))
write_json(out, "lmm_slopes_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
