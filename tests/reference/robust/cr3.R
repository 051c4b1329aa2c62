# Reference values for verzuimmodel.effects.estimators.nb_cluster_cr3: NB2 regression (MASS::glm.nb) with the
# CR3 (Mancl-DeRouen) cluster-robust variance of clubSandwich, clustered by PO school.
# Data: ../glmm/nb_crossed.csv (made by ../glmm/make_data.py). Run from this folder: Rscript cr3.R
suppressPackageStartupMessages({library(MASS); library(clubSandwich)})
cr <- read.csv("../glmm/nb_crossed.csv")
fit <- glm.nb(y ~ x1 + x2 + treat + offset(log(days)), data = cr, control = glm.control(epsilon = 1e-12, maxit = 100))
se <- function(type) sqrt(diag(as.matrix(vcovCR(fit, cluster = cr$po, type = type))))
out <- data.frame(term = names(coef(fit)), estimate = unname(coef(fit)), se_cr0 = unname(se("CR0")),
                  se_cr3 = unname(se("CR3")), theta = fit$theta)
write.csv(out, "cr3_reference.csv", row.names = FALSE)
cat(R.version.string, "MASS", as.character(packageVersion("MASS")), "clubSandwich",
    as.character(packageVersion("clubSandwich")), "\n", file = "R_VERSIONS.txt")
