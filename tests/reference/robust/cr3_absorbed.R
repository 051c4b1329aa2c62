# Reference values for verzuimmodel.glm: Poisson and NB2 regressions with the VO school effects (absorbed in
# Python, dummy-coded here) and cluster-robust variances by PO school (clubSandwich CR0 and CR3), without and
# with prior weights. Data: ../glmm/nb_crossed.csv (made by ../glmm/make_data.py); the weights are a fixed
# pattern of the row number. Run from this folder: Rscript cr3_absorbed.R
suppressPackageStartupMessages({library(MASS); library(clubSandwich); library(jsonlite)})
cr <- read.csv("../glmm/nb_crossed.csv")
cr$w <- 0.5 + ((seq_len(nrow(cr)) - 1) %% 4) / 2      # prior weights 0.5, 1, 1.5, 2, 0.5, ...
terms <- c("x1", "x2", "treat")
f <- y ~ x1 + x2 + treat + factor(vo) + offset(log(days))
ctl <- glm.control(epsilon = 1e-14, maxit = 200)
one <- function(fit) {
  v <- function(type) unname(as.matrix(vcovCR(fit, cluster = cr$po, type = type))[terms, terms])
  out <- list(estimate = unname(coef(fit)[terms]), cr0 = v("CR0"), cr3 = v("CR3"))
  if (!is.null(fit$theta)) out$theta <- fit$theta
  out
}
out <- list(terms = terms,
            poisson = one(glm(f, family = poisson, data = cr, control = ctl)),
            poisson_weighted = one(glm(f, family = poisson, data = cr, weights = w, control = ctl)),
            negbin = one(glm.nb(f, data = cr, control = ctl)),
            negbin_weighted = one(glm.nb(f, data = cr, weights = w, control = ctl)))
write_json(out, "cr3_absorbed.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat(R.version.string, "MASS", as.character(packageVersion("MASS")), "clubSandwich",
    as.character(packageVersion("clubSandwich")), "\n", file = "R_VERSIONS.txt")
