# Reference values for verzuimmodel.survival.curve_summaries (R survival). Run from this folder:
#   python make_data.py && Rscript curve_summaries.R
# Frozen with R 4.2.2, survival 3.5-3 and jsonlite 1.8.4 (the script prints the versions).
# Writes lung.csv, aml.csv, veteran.csv (R's own datasets, read back so both sides use the same
# numbers) and four JSON files:
#   km_quantiles.json  quantile(survfit(...), probs, conf.int = TRUE)
#   km_print.json      the table of print(survfit(...), rmean = tau) / summary(...)$table (survmean)
#   rmst2.json         survRM2::rmst2 (unadjusted), computed by hand from survfit outputs
#   coxsurv.json       survfit(coxph(...), newdata): surv, std.err (of the cumulative hazard), bands
library(survival)
library(jsonlite)
write_json_ref <- function(x, file) write(toJSON(x, digits = NA, na = "null", dataframe = "columns",
                                                 auto_unbox = TRUE), file)

# ---- R's datasets, with a 0/1 event column ----------------------------------------------------------
write.csv(data.frame(lung, event = lung$status - 1), "lung.csv", row.names = FALSE)   # status 1 censored, 2 dead
write.csv(data.frame(aml, maintained = as.integer(aml$x == "Maintained")), "aml.csv", row.names = FALSE)
write.csv(veteran, "veteran.csv", row.names = FALSE)                                 # status 1 dead
lung <- read.csv("lung.csv")
aml <- read.csv("aml.csv")
veteran <- read.csv("veteran.csv")
ep <- read.csv("episodes.csv")
flat <- read.csv("flat.csv")
cx <- read.csv("cox.csv")
ss <- read.csv("cox_start_stop.csv")
nd <- read.csv("cox_newdata.csv")

groups_of <- function(fit) if (is.null(fit$strata)) "all" else sub("^[^=]*=", "", names(fit$strata))

# ---- Kaplan-Meier quantiles, print table and restricted means ---------------------------------------
probs <- c(0.1, 0.125, 0.25, 0.375, 0.5, 0.6, 0.75, 0.9)
km_cases <- list(
  lung_sex = list(fit = survfit(Surv(time, event) ~ sex, lung), taus = c(365, 730, 1000)),
  lung_loglog = list(fit = survfit(Surv(time, event) ~ 1, lung, conf.type = "log-log"), taus = c(500)),
  lung_plain_sex = list(fit = survfit(Surv(time, event) ~ sex, lung, conf.type = "plain"), taus = c(365)),
  aml_x = list(fit = survfit(Surv(time, status) ~ x, aml), taus = c(3, 45, 100, 161)),
  veteran_trt_90 = list(fit = survfit(Surv(time, status) ~ trt, veteran, conf.int = 0.9), taus = c(180, 700)),
  veteran_celltype_loglog = list(fit = survfit(Surv(time, status) ~ celltype, veteran, conf.type = "log-log"),
                                 taus = c(100)),
  flat = list(fit = survfit(Surv(time, status) ~ group, flat), taus = c(2.5, 6)),
  flat_loglog = list(fit = survfit(Surv(time, status) ~ group, flat, conf.type = "log-log"), taus = c(4)),
  flat_plain = list(fit = survfit(Surv(time, status) ~ group, flat, conf.type = "plain"), taus = c(4)),
  episodes_weights = list(fit = survfit(Surv(time, status) ~ group, ep, weights = w), taus = c(60, 150)),  # IJ
  episodes_entry = list(fit = survfit(Surv(entry, time, status) ~ group, ep), taus = c(90)),
  episodes_entry_weights_greenwood_loglog = list(
    fit = survfit(Surv(entry, time, status) ~ group, ep, weights = w, robust = FALSE, conf.type = "log-log"),
    taus = c(90)),
  episodes_ij = list(fit = survfit(Surv(time, status) ~ 1, ep, robust = TRUE), taus = c(120))
)
quant <- list(); table <- list()
for (name in names(km_cases)) {
  fit <- km_cases[[name]]$fit
  g <- groups_of(fit)
  q <- quantile(fit, probs, conf.int = TRUE)
  flat_q <- function(m) as.vector(t(matrix(m, nrow = length(g))))     # group-major
  quant[[name]] <- list(conf_type = fit$conf.type, level = fit$conf.int,
                        variance = if (fit$logse) "greenwood" else "ij",
                        result = data.frame(group = rep(g, each = length(probs)), prob = rep(probs, length(g)),
                                            quantile = flat_q(q$quantile), conf_low = flat_q(q$lower),
                                            conf_high = flat_q(q$upper)))
  # print(fit, rmean = tau) shows survmean's matrix (print and summary refuse tau < the first time;
  # survmean itself gives tau there)
  rows <- list()
  for (tau in km_cases[[name]]$taus) {
    m <- survival:::survmean(fit, rmean = tau)$matrix
    if (is.null(dim(m))) m <- matrix(m, nrow = 1, dimnames = list(NULL, names(m)))
    rows[[length(rows) + 1]] <- data.frame(group = g, tau = tau, records = m[, 1], n_max = m[, 2], n_start = m[, 3],
                                           events = m[, 4], rmean = m[, 5], se_rmean = m[, 6], median = m[, 7],
                                           conf_low = m[, 8], conf_high = m[, 9])
  }
  table[[name]] <- do.call(rbind, rows)
  rownames(table[[name]]) <- NULL
}
write_json_ref(quant, "km_quantiles.json")
write_json_ref(table, "km_print.json")

# ---- RMST of two groups: survRM2::rmst2 (unadjusted) by hand -----------------------------------------
# rmst1 as survRM2 defines it, from a one-curve survfit: the area under S on [0, tau] and its
# Greenwood-type variance sum_j (area from t_j to tau)^2 d_j / (n_j (n_j - d_j)).
rmst1 <- function(fit, tau, alpha) {
  idx <- fit$time <= tau
  wk.time <- sort(c(fit$time[idx], tau))
  wk.surv <- fit$surv[idx]
  wk.n.risk <- fit$n.risk[idx]
  wk.n.event <- fit$n.event[idx]
  areas <- diff(c(0, wk.time)) * c(1, wk.surv)
  rmst <- sum(areas)
  wk.var <- c(ifelse((wk.n.risk - wk.n.event) == 0, 0, wk.n.event / (wk.n.risk * (wk.n.risk - wk.n.event))), 0)
  rmst.var <- sum(cumsum(rev(areas[-1]))^2 * rev(wk.var)[-1])
  # the same numbers as print(fit, rmean = tau)
  m <- survival:::survmean(fit, rmean = tau)$matrix
  stopifnot(isTRUE(all.equal(unname(c(m["rmean"], m["se(rmean)"])), c(rmst, sqrt(rmst.var)), tolerance = 1e-13)))
  z <- qnorm(1 - alpha / 2)
  list(rmst = rmst, var = rmst.var, se = sqrt(rmst.var), low = rmst - z * sqrt(rmst.var),
       high = rmst + z * sqrt(rmst.var), rmtl = tau - rmst)
}
rmst2 <- function(fit1, fit0, tau, alpha) {
  wk1 <- rmst1(fit1, tau, alpha); wk0 <- rmst1(fit0, tau, alpha)
  z <- qnorm(1 - alpha / 2)
  contrast <- function(est, se, exp_scale) {
    p <- pnorm(-abs(est) / se) * 2
    if (exp_scale) c(exp(est), se, exp(est - z * se), exp(est + z * se), p)
    else c(est, se, est - z * se, est + z * se, p)
  }
  out <- rbind(contrast(wk1$rmst - wk0$rmst, sqrt(wk1$var + wk0$var), FALSE),
               contrast(log(wk1$rmst) - log(wk0$rmst), sqrt(wk1$var / wk1$rmst^2 + wk0$var / wk0$rmst^2), TRUE),
               contrast(log(wk1$rmtl) - log(wk0$rmtl), sqrt(wk1$var / wk1$rmtl^2 + wk0$var / wk0$rmtl^2), TRUE))
  arms <- data.frame(arm = c(1, 0), rmst = c(wk1$rmst, wk0$rmst), se = c(wk1$se, wk0$se),
                     conf_low = c(wk1$low, wk0$low), conf_high = c(wk1$high, wk0$high), rmtl = c(wk1$rmtl, wk0$rmtl))
  list(tau = tau, alpha = alpha, arms = arms,
       contrasts = data.frame(measure = c("rmst_difference", "rmst_ratio", "rmtl_ratio"), estimate = out[, 1],
                              std_error = out[, 2], conf_low = out[, 3], conf_high = out[, 4], p_value = out[, 5]))
}
rm_cases <- list(
  lung_sex_365 = c(rmst2(survfit(Surv(time, event) ~ 1, lung[lung$sex == 2, ]),
                         survfit(Surv(time, event) ~ 1, lung[lung$sex == 1, ]), 365, 0.05),
                   data = "lung", group = "sex", arm1 = "2", arm0 = "1"),
  lung_sex_730 = c(rmst2(survfit(Surv(time, event) ~ 1, lung[lung$sex == 2, ]),
                         survfit(Surv(time, event) ~ 1, lung[lung$sex == 1, ]), 730, 0.05),
                   data = "lung", group = "sex", arm1 = "2", arm0 = "1"),
  # Nonmaintained's curve reaches 0 at 45, its last time: tau = 100 is allowed (survRM2's case 2)
  aml_100 = c(rmst2(survfit(Surv(time, status) ~ 1, aml[aml$maintained == 1, ]),
                    survfit(Surv(time, status) ~ 1, aml[aml$maintained == 0, ]), 100, 0.05),
              data = "aml", group = "x", arm1 = "Maintained", arm0 = "Nonmaintained"),
  veteran_trt_180_90 = c(rmst2(survfit(Surv(time, status) ~ 1, veteran[veteran$trt == 2, ]),
                               survfit(Surv(time, status) ~ 1, veteran[veteran$trt == 1, ]), 180, 0.10),
                         data = "veteran", group = "trt", arm1 = "2", arm0 = "1"),
  episodes_ab = c(rmst2(survfit(Surv(time, status) ~ 1, ep[ep$group == "b", ]),
                        survfit(Surv(time, status) ~ 1, ep[ep$group == "a", ]), 100, 0.05),
                  data = "episodes", group = "group", arm1 = "b", arm0 = "a"),
  # beyond survRM2 (no weights there): the same definitions on weighted Kaplan-Meier curves
  episodes_ac_weights = c(rmst2(survfit(Surv(time, status) ~ 1, ep[ep$group == "c", ], weights = w),
                                survfit(Surv(time, status) ~ 1, ep[ep$group == "a", ], weights = w), 120, 0.05),
                          data = "episodes", group = "group", arm1 = "c", arm0 = "a", weights = "w")
)
write_json_ref(rm_cases, "rmst2.json")

# ---- survfit.coxph: curves of new covariate profiles with standard errors and bands ------------------
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)
lc <- na.omit(lung[, c("time", "event", "age", "sex", "ph.ecog")])
vet_nd <- data.frame(trt = c(1, 2, 2), karno = c(60, 30, 90), age = c(65, 50, 40))
lung_nd <- data.frame(age = c(60, 70, 50), ph.ecog = c(1, 2, 0), sex = c(1, 2, 2))
cox_cases <- list(
  veteran_efron = list(fit = coxph(Surv(time, status) ~ trt + karno + age, veteran, control = ctl), nd = vet_nd),
  veteran_breslow = list(fit = coxph(Surv(time, status) ~ trt + karno + age, veteran, ties = "breslow", control = ctl),
                         nd = vet_nd),
  lung_strata = list(fit = coxph(Surv(time, event) ~ age + ph.ecog + strata(sex), lc, control = ctl), nd = lung_nd),
  lung_strata_breslow = list(fit = coxph(Surv(time, event) ~ age + ph.ecog + strata(sex), lc, ties = "breslow",
                                         control = ctl), nd = lung_nd),
  # non-integer weights: robust variance by default, which survfit.coxph uses for the beta part
  cox_efron_strata_weights = list(fit = coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), cx, weights = w,
                                              control = ctl), nd = nd),
  cox_breslow_cluster = list(fit = coxph(Surv(time, status) ~ x1 + x2 + x3, cx, cluster = cl, ties = "breslow",
                                         control = ctl), nd = nd),
  cox_efron_loglog = list(fit = coxph(Surv(time, status) ~ x1 + x2 + x3, cx, control = ctl), nd = nd,
                          conf.type = "log-log"),
  cox_breslow_strata_plain_90 = list(fit = coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), cx, ties = "breslow",
                                                 control = ctl), nd = nd, conf.type = "plain", conf.int = 0.9),
  ss_efron = list(fit = coxph(Surv(start, stop, status) ~ tv + z, ss, control = ctl), nd = nd),
  ss_breslow_cluster = list(fit = coxph(Surv(start, stop, status) ~ tv + z, ss, cluster = id, ties = "breslow",
                                        control = ctl), nd = nd)
)
cox_out <- list()
for (name in names(cox_cases)) {
  cc <- cox_cases[[name]]
  conf.type <- if (is.null(cc$conf.type)) "log" else cc$conf.type
  conf.int <- if (is.null(cc$conf.int)) 0.95 else cc$conf.int
  curves <- list()
  for (k in seq_len(nrow(cc$nd))) {
    sf <- survfit(cc$fit, newdata = cc$nd[k, , drop = FALSE], conf.type = conf.type, conf.int = conf.int)
    curves[[k]] <- data.frame(row = k - 1, time = sf$time, surv = as.vector(sf$surv), cumhaz = as.vector(sf$cumhaz),
                              std_err = as.vector(sf$std.err), lower = as.vector(sf$lower),
                              upper = as.vector(sf$upper))
  }
  cox_out[[name]] <- list(ties = cc$fit$method, conf_type = conf.type, level = conf.int, coef = as.list(coef(cc$fit)),
                          robust = !is.null(cc$fit$naive.var), curves = do.call(rbind, curves))
}
write_json_ref(cox_out, "coxsurv.json")
cat("R", R.version$major, R.version$minor, "survival", as.character(packageVersion("survival")),
    "jsonlite", as.character(packageVersion("jsonlite")), "\n")
