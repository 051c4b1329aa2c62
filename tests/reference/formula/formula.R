# Reference values for the survival models' formulas (verzuimmodel.survival.formula).
# Run from this folder:  python make_data.py && Rscript formula.R
# Exports R's own lung (all rows, missing values kept; dots in names become underscores, so that the
# same names work in patsy) and reads it back with episodes.csv, so that R and the tests fit exactly
# the same numbers. Every fit uses R's default na.action (na.omit): the tests fit with
# na_action="drop". Writes formula_reference.json: per model R's coefficient names, estimates,
# standard errors (robust where R's fit is), log-likelihood, n and the number of rows dropped.
library(survival)
library(jsonlite)
library(cmprsk)
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)
sctl <- survreg.control(rel.tolerance = 1e-13, toler.chol = 1e-14, maxiter = 100)

lung <- survival::lung
names(lung) <- gsub(".", "_", names(lung), fixed = TRUE)
lung$status <- lung$status - 1L
lung$sex_lab <- c("m", "f")[lung$sex]
lung$ecog <- c("active", "restricted", "bed", "bed")[lung$ph_ecog + 1]
write.csv(lung, "lung.csv", row.names = FALSE)
lung <- read.csv("lung.csv")
ep <- read.csv("episodes.csv", na.strings = c("", "NA"))

out <- list()
dropped <- function(fit) length(fit$na.action)
add_cox <- function(name, fit) {
  out[[name]] <<- list(terms = names(coef(fit)), coef = unname(coef(fit)), se = unname(sqrt(diag(fit$var))),
                       loglik = fit$loglik[2], n = fit$n, n_dropped = dropped(fit))
}
# survreg fits log T = mu + x'alpha + sigma W; the proportional-hazards form h = lambda rho t^(rho-1) exp(x'beta)
# has beta = -alpha/sigma, log_lambda = -mu/sigma, log_rho = -log(sigma); covariance by the delta method
# (exact: the same likelihood, reparametrised).
add_weibull <- function(name, fit) {
  theta <- c(coef(fit), log(fit$scale))
  k <- length(theta); s <- exp(theta[k]); p <- k - 2
  J <- matrix(0, k, k)       # rows: beta_1..p, log_lambda, log_rho; columns: mu, alpha_1..p, log sigma
  for (j in seq_len(p)) { J[j, j + 1] <- -1 / s; J[j, k] <- theta[j + 1] / s }
  J[p + 1, 1] <- -1 / s; J[p + 1, k] <- theta[1] / s
  J[k, k] <- -1
  V <- J %*% fit$var %*% t(J)
  est <- c(-theta[2:(p + 1)] / s, -theta[1] / s, -theta[k])
  out[[name]] <<- list(terms = c(names(coef(fit))[-1], "log_lambda", "log_rho"), coef = unname(est),
                       se = sqrt(diag(V)), loglik = fit$loglik[2], n = nrow(fit$y), n_dropped = dropped(fit))
}

# a factor, an interaction without its main effect, strata
add_cox("lung_strata", coxph(Surv(time, status) ~ age + factor(sex) + ph_ecog:age + strata(inst), lung,
                             control = ctl))
# a factor with another reference level crossed with a string factor, transformations, cluster(): robust SEs
add_cox("lung_cluster", coxph(Surv(time, status) ~ relevel(factor(ecog), ref = "restricted") * sex_lab + log(age) +
                                I((ph_karno / 10)^2) + cluster(inst), lung, control = ctl))
add_weibull("lung_weibull", survreg(Surv(time, status) ~ age + factor(sex) + ph_ecog:age, lung, dist = "weibull",
                                    control = sctl))
# string factors and a factor-by-numeric interaction; non-integer weights (robust SEs, as R's default)
add_cox("episodes_cox", coxph(Surv(time, status) ~ factor(region) * age + sex + strata(sbo), ep, weights = w,
                              control = ctl))
add_weibull("episodes_weibull", survreg(Surv(time, status) ~ factor(region) * age + sex + cluster(school), ep,
                                        dist = "weibull", control = sctl))
# Fine-Gray (cmprsk::crr takes a matrix: model.matrix of the formula on the complete cases); age:sex
# without age's main effect codes sex with both levels
cc <- na.omit(ep[, c("time", "cause", "region", "sex", "age")])
X <- model.matrix(~ factor(region) + sex + age:sex, cc)[, -1]
fg <- crr(cc$time, cc$cause, X, failcode = 1, cencode = 0)
out[["episodes_crr"]] <- list(terms = colnames(X), coef = unname(fg$coef), se = unname(sqrt(diag(fg$var))),
                              loglik = fg$loglik, n = nrow(cc), n_dropped = nrow(ep) - nrow(cc))

write(toJSON(out, digits = I(15), auto_unbox = TRUE), "formula_reference.json")
cat("survival", as.character(packageVersion("survival")), " cmprsk", as.character(packageVersion("cmprsk")), "\n")
str(out)
