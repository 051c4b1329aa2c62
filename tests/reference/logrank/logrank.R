# Reference values for verzuimmodel.survival.logrank_test (R survival::survdiff). Run from this folder:
#   python make_data.py && Rscript logrank.R
library(survival)
library(jsonlite)
d <- read.csv("logrank.csv")
one <- function(fit) list(chisq = fit$chisq, obs = as.vector(if (is.matrix(fit$obs)) rowSums(fit$obs) else fit$obs),
                          exp = as.vector(if (is.matrix(fit$exp)) rowSums(fit$exp) else fit$exp),
                          var = as.vector(fit$var), n = as.vector(fit$n))
out <- list(
  logrank = one(survdiff(Surv(time, status) ~ group, data = d)),
  peto = one(survdiff(Surv(time, status) ~ group, data = d, rho = 1)),
  strata = one(survdiff(Surv(time, status) ~ group + strata(stratum), data = d)),
  two = one(survdiff(Surv(time, status) ~ group, data = d[d$group != "c", ]))
)
write(toJSON(out, digits = 15), "logrank_reference.json")
