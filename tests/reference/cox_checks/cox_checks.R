# Reference values for verzuimmodel.survival.cox_checks (R survival: residuals.coxph, cox.zph, concordance).
# Run from this folder:  python make_data.py && Rscript cox_checks.R
# Exports R's own datasets (complete cases of the variables used) to CSV and reads them back, so that
# R and the tests fit exactly the same numbers.
library(survival)
library(jsonlite)
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)

lung <- na.omit(survival::lung[, c("time", "status", "age", "sex", "ph.ecog", "inst")])
lung$status <- lung$status - 1L
vet <- survival::veteran
vet$celltype <- as.character(vet$celltype)
vet$cell_smallcell <- as.integer(vet$celltype == "smallcell")
vet$cell_adeno <- as.integer(vet$celltype == "adeno")
vet$cell_large <- as.integer(vet$celltype == "large")
ova <- survival::ovarian
ova$w <- c(0.5, 1, 1.5, 2.25)[1 + seq_len(nrow(ova)) %% 4]     # non-integer case weights
heart <- survival::heart
heart$transplant <- as.integer(as.character(heart$transplant))
write.csv(lung, "lung.csv", row.names = FALSE)
write.csv(vet, "veteran.csv", row.names = FALSE)
write.csv(ova, "ovarian.csv", row.names = FALSE)
write.csv(heart, "heart.csv", row.names = FALSE)
lung <- read.csv("lung.csv")
vet <- read.csv("veteran.csv")
ova <- read.csv("ovarian.csv")
heart <- read.csv("heart.csv")
ss <- read.csv("start_stop_strata.csv")
ss$w <- as.numeric(ss$w)     # cox.zph's C code needs double weights

fits <- list(
  lung_efron = coxph(Surv(time, status) ~ age + sex + ph.ecog, lung, control = ctl),
  lung_breslow = coxph(Surv(time, status) ~ age + sex + ph.ecog, lung, ties = "breslow", control = ctl),
  lung_discrete = coxph(Surv(time, status) ~ sex + ph.ecog, lung, control = ctl),
  lung_cluster = coxph(Surv(time, status) ~ age + sex + ph.ecog, lung, cluster = inst, control = ctl),
  veteran_dummies = coxph(Surv(time, status) ~ trt + karno + age + cell_smallcell + cell_adeno + cell_large,
                          vet, control = ctl),
  veteran_strata = coxph(Surv(time, status) ~ trt + karno + age + strata(celltype), vet, control = ctl),
  veteran_strata_breslow = coxph(Surv(time, status) ~ trt + karno + age + strata(celltype), vet,
                                 ties = "breslow", control = ctl),
  ovarian_weights = coxph(Surv(futime, fustat) ~ age + ecog.ps + rx, ova, weights = w, control = ctl),
  heart_efron = coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart, control = ctl),
  heart_breslow = coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart, ties = "breslow",
                        control = ctl),
  ss_strata_weights = coxph(Surv(start, stop, status) ~ tv + z + g + strata(region), ss, weights = w,
                            control = ctl),
  ss_strata_breslow = coxph(Surv(start, stop, status) ~ tv + z + g + strata(region), ss, ties = "breslow",
                            cluster = school, control = ctl),
  # few distinct risk scores: many pairs tied on the score, and on score and time, with late entry
  ss_discrete = coxph(Surv(start, stop, status) ~ tv + g + strata(region), ss, weights = w, control = ctl)
)

zph_table <- function(z) {
  tb <- z$table
  list(term = rownames(tb), chisq = unname(tb[, "chisq"]), df = unname(tb[, "df"]), p = unname(tb[, "p"]))
}
schoen <- function(r) list(time = as.numeric(rownames(r)), values = unname(r))
# Schoenfeld residuals times the case weight of their death. residuals(fit, "schoenfeld", weighted = TRUE)
# takes weights[deaths] with 'deaths' a mask over the rows sorted by (strata, time) but 'weights' in data
# order (survival 3.5-3), so it is right only when the data are sorted by time; here the weights are
# taken in the same sorted order as the residuals.
schoen_weighted <- function(fit) {
  y <- fit$y
  ny <- ncol(y)
  st <- survival:::coxph.getdata(fit, y = TRUE, x = FALSE, stratax = TRUE)$strata
  st <- if (is.null(st)) rep(0, nrow(y)) else as.numeric(st)
  ord <- order(st, y[, ny - 1], -y[, ny])
  w <- if (is.null(fit$weights)) rep(1, nrow(y)) else fit$weights
  r <- residuals(fit, "schoenfeld")
  list(time = as.numeric(rownames(r)), values = unname(r * w[ord][y[ord, ny] == 1]))
}

one <- function(fit) {
  cc <- concordance(fit)
  conc <- list(concordance = unname(cc$concordance), var = unname(cc$var),
               count = as.list(if (is.matrix(cc$count)) colSums(cc$count) else cc$count))
  # with cluster only the concordance's variance changes (residuals use the model-based variance)
  if (!is.null(fit$call$cluster)) return(list(coef = unname(coef(fit)), terms = names(coef(fit)), concordance = conc))
  list(
    coef = unname(coef(fit)), terms = names(coef(fit)),
    martingale = unname(residuals(fit, "martingale")),
    deviance = unname(residuals(fit, "deviance")),
    score = unname(residuals(fit, "score")),
    schoenfeld = schoen(residuals(fit, "schoenfeld")),
    schoenfeld_weighted = schoen_weighted(fit),
    scaledsch = schoen(residuals(fit, "scaledsch")),
    dfbeta = unname(residuals(fit, "dfbeta")),
    dfbetas = unname(residuals(fit, "dfbetas")),
    zph = list(km = zph_table(cox.zph(fit)), rank = zph_table(cox.zph(fit, transform = "rank")),
               identity = zph_table(cox.zph(fit, transform = "identity")),
               log = zph_table(cox.zph(fit, transform = "log")),
               sqrt = zph_table(cox.zph(fit, transform = sqrt))),
    concordance = conc
  )
}
out <- lapply(fits, one)
# collapse = id: residuals summed over each subject's rows (start-stop data)
h <- fits$heart_efron
out$heart_efron$collapsed <- list(
  dfbeta = unname(residuals(h, "dfbeta", collapse = heart$id)),
  martingale = unname(residuals(h, "martingale", collapse = heart$id)),
  deviance = unname(residuals(h, "deviance", collapse = heart$id)))
out$versions <- list(R = R.version.string, survival = as.character(packageVersion("survival")))
write(toJSON(out, digits = I(13), matrix = "rowmajor"), "cox_checks_reference.json")
