# Reference values for verzuimmodel.survival.nonparametric (R survival::survfit, cmprsk::cuminc).
# Run from this folder:  python make_data.py && Rscript nonparametric.R
# Writes km_reference.csv, km_median.csv, aj_reference.csv and cuminc_reference.csv.
library(survival)
library(cmprsk)
d <- read.csv("episodes.csv")
d$ev <- factor(d$cause, levels = 0:3)          # 0 = censored, 1..3 = causes

# ---- Kaplan-Meier --------------------------------------------------------------------------------
# std_error is the standard error of S(t): R's std.err is that of log S(t) (Greenwood, logse = TRUE)
# or already of S(t) (robust / IJ, logse = FALSE).
km <- list(); med <- list()
add_km <- function(name, fit) {
  grp <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(sub("^group=", "", names(fit$strata)), fit$strata)
  se <- if (fit$logse) fit$surv * fit$std.err else fit$std.err
  km[[name]] <<- data.frame(model = name, group = grp, time = fit$time, n_risk = fit$n.risk,
                            n_event = fit$n.event, n_censor = fit$n.censor, survival = fit$surv,
                            std_error = se, conf_low = fit$lower, conf_high = fit$upper,
                            conf_type = fit$conf.type, logse = fit$logse)
  q <- quantile(fit, 0.5, conf.int = FALSE)
  med[[name]] <<- data.frame(model = name, group = if (is.null(fit$strata)) "all" else
    sub("^group=", "", names(fit$strata)), median = as.vector(q))
}
add_km("km", survfit(Surv(time, status) ~ 1, d))
add_km("km_group", survfit(Surv(time, status) ~ group, d))
add_km("km_loglog_group", survfit(Surv(time, status) ~ group, d, conf.type = "log-log"))
add_km("km_plain", survfit(Surv(time, status) ~ 1, d, conf.type = "plain"))
add_km("km_entry", survfit(Surv(entry, time, status) ~ 1, d))
add_km("km_entry_group", survfit(Surv(entry, time, status) ~ group, d))
add_km("km_weights_greenwood", survfit(Surv(time, status) ~ 1, d, weights = w, robust = FALSE))
add_km("km_weights_ij_group", survfit(Surv(time, status) ~ group, d, weights = w))   # robust by default
add_km("km_ij", survfit(Surv(time, status) ~ 1, d, robust = TRUE))
add_km("km_entry_weights_ij", survfit(Surv(entry, time, status) ~ 1, d, weights = w, id = id, robust = TRUE))
add_km("km_entry_weights_greenwood_loglog",
       survfit(Surv(entry, time, status) ~ 1, d, weights = w, robust = FALSE, conf.type = "log-log"))
# the curve reaches 0 at the last time (Greenwood std.err Inf there, intervals NA)
e <- read.csv("edge.csv")
e$ev <- factor(e$cause, levels = 0:2)
add_km("edge_km", survfit(Surv(time, status) ~ 1, e))
add_km("edge_km_entry_weights", survfit(Surv(entry, time, status) ~ 1, e, weights = w, robust = FALSE))
add_km("edge_km_entry_weights_ij", survfit(Surv(entry, time, status) ~ 1, e, weights = w, id = id, robust = TRUE))
write.csv(do.call(rbind, km), "km_reference.csv", row.names = FALSE)
write.csv(do.call(rbind, med), "km_median.csv", row.names = FALSE)

# ---- Aalen-Johansen: pstate, std.err (infinitesimal jackknife), lower, upper ------------------------
aj <- list()
add_aj <- function(name, fit) {
  grp <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(sub("^group=", "", names(fit$strata)), fit$strata)
  out <- list()
  for (k in setdiff(fit$states, "(s0)")) {
    j <- match(k, fit$states)
    out[[k]] <- data.frame(model = name, group = grp, cause = as.integer(k), time = fit$time, n_risk = fit$n.risk[, 1],
                           n_event = fit$n.event[, j], estimate = fit$pstate[, j], std_error = fit$std.err[, j],
                           conf_low = fit$lower[, j], conf_high = fit$upper[, j], conf_type = fit$conf.type)
  }
  aj[[name]] <<- do.call(rbind, out)
}
add_aj("aj", survfit(Surv(time, ev) ~ 1, d))
add_aj("aj_group", survfit(Surv(time, ev) ~ group, d))
add_aj("aj_loglog", survfit(Surv(time, ev) ~ 1, d, conf.type = "log-log"))
add_aj("aj_plain_group", survfit(Surv(time, ev) ~ group, d, conf.type = "plain"))
add_aj("aj_entry", survfit(Surv(entry, time, ev) ~ 1, d, id = id))
add_aj("aj_weights", survfit(Surv(time, ev) ~ 1, d, weights = w))
add_aj("aj_entry_weights_group", survfit(Surv(entry, time, ev) ~ group, d, id = id, weights = w))
add_aj("edge_aj_entry_weights", survfit(Surv(entry, time, ev) ~ 1, e, id = id, weights = w))
add_aj("edge_aj", survfit(Surv(time, ev) ~ 1, e))
write.csv(do.call(rbind, aj), "aj_reference.csv", row.names = FALSE)

# ---- cmprsk::cuminc estimates (an independent implementation of the same estimator) --------------
ci <- cuminc(d$time, d$cause, d$group, cencode = 0)
tp <- timepoints(ci, sort(unique(d$time)))
rows <- list()
for (nm in rownames(tp$est)) {
  parts <- strsplit(nm, " ")[[1]]
  rows[[nm]] <- data.frame(group = parts[1], cause = as.integer(parts[2]), time = as.numeric(colnames(tp$est)),
                           estimate = tp$est[nm, ])
}
write.csv(do.call(rbind, rows), "cuminc_reference.csv", row.names = FALSE)
cat("survival", as.character(packageVersion("survival")), "cmprsk", as.character(packageVersion("cmprsk")), "\n")
