# Reference values for verzuimmodel.survival.target_trial, built by hand in R (no target-trial
# package): the same clones, the same pooled logistic weight models (glm), the same weights, and
# the weighted Aalen-Johansen estimate from survival::survfit. Run from this folder:
#   python make_data.py && Rscript target_trial.R
library(survival)
library(jsonlite)
d <- read.csv("trial.csv")
p <- fromJSON("params.json")
grid <- p$grid
K <- length(grid) - 1
n <- nrow(d)
Z <- as.matrix(d[, p$covariates])
start <- ifelse(d$start < 0, Inf, d$start)
mid <- log1p((grid[-length(grid)] + grid[-1]) / 2)
tau_k <- mid - mean(mid)
interval_of <- function(day) findInterval(day, grid)          # k with grid[k] <= day < grid[k + 1]

# Discrete-time hazards: one row per unit and interval k with grid[k] < end; y = 1 in the interval
# holding the event day; logit h = alpha_k + z'b + tau_k z'g (+ z'c in interval `own`, the grace
# window of the start model), intervals without events have h = 0.
hazards <- function(end, event, event_day, own = NA, Zm = Z) {
  rows <- do.call(rbind, lapply(seq_len(n), function(i) {     # small reference data: clarity over speed
    ks <- which(grid[1:K] < end[i])
    if (!length(ks)) return(NULL)
    data.frame(i = i, k = ks, y = as.integer(event[i] & ks == interval_of(event_day[i])))
  }))
  live <- sort(unique(rows$k[rows$y == 1]))
  rows <- rows[rows$k %in% live, ]
  X <- Zm[rows$i, , drop = FALSE]
  XT <- X * tau_k[rows$k]
  kf <- factor(rows$k, levels = live)
  if (ncol(Zm) == 0) {
    fit <- glm(rows$y ~ 0 + kf, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
    return(list(H = pmin(outer(rep(1, n), replace(numeric(K), live, plogis(coef(fit)))), 1 - 1e-9)))
  } else if (is.na(own)) {
    fit <- glm(rows$y ~ 0 + kf + X + XT, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  } else {
    XO <- X * (rows$k == own)
    fit <- glm(rows$y ~ 0 + kf + X + XT + XO, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  }
  cf <- coef(fit)
  alpha <- cf[seq_along(live)]
  b <- cf[length(live) + seq_len(ncol(Z))]
  g <- cf[length(live) + ncol(Z) + seq_len(ncol(Z))]
  o <- if (is.na(own)) rep(0, ncol(Z)) else cf[length(live) + 2 * ncol(Z) + seq_len(ncol(Z))]
  H <- matrix(0, n, K)
  for (j in seq_along(live)) {
    k <- live[j]
    H[, k] <- plogis(alpha[j] + Z %*% b + tau_k[k] * (Z %*% g) + (!is.na(own) && k == own) * (Z %*% o))
  }
  list(H = pmin(H, 1 - 1e-9), beta = unname(b), gamma = unname(g), converged = fit$converged)
}

dd <- p$treat_day
g <- p$grace_days
kd <- interval_of(dd)
ev_a <- is.finite(start) & start < d$exit
A <- hazards(pmin(start + 1, d$exit), ev_a, ifelse(ev_a, start, 0), own = kd)
C <- hazards(d$exit + 1, d$status == 0, d$exit)
cumprod_rows <- function(M) cbind(1, t(apply(M, 1, cumprod)))   # column j: product over intervals < j
SA <- cumprod_rows(1 - A$H)
SC <- cumprod_rows(1 - C$H)
t_max <- max(c(p$horizons, p$tau))
days <- 0:t_max
col_base <- pmin(pmax(interval_of(days - 1), 1), K)             # interval holding day t - 1

arm <- function(which) {
  x <- d$exit
  st <- d$status
  started <- start < d$exit
  W <- 1 / (SA[, 2:(K + 1)] * SC[, 1:K])                        # W[i, k]: no start through k, not lost before k
  col <- col_base
  if (which == "never") {
    x[started] <- start[started]
    st[started] <- 0
  } else {
    early <- started & start < dd
    x[early] <- start[early]
    st[early] <- 0
    late <- !early & !(started & start <= dd + g) & d$exit > dd + g
    x[late] <- dd + g
    st[late] <- 0
    pstart <- SA[, kd] * A$H[, kd]
    W[, kd] <- 1 / (SA[, kd] * SC[, kd])
    for (k in (kd + 1):K) W[, k] <- 1 / (pstart * SC[, k])
    W <- cbind(W, 1 / (pstart * SC[, kd]))
    col[days == dd + g + 1] <- K + 1
  }
  # one row per clone and run of days with the same weight column: (a, b], weight W[i, column]
  rows <- do.call(rbind, lapply(seq_len(n), function(i) {
    last <- min(x[i], t_max)
    if (last < d$entry[i] + 1) return(NULL)
    t <- (d$entry[i] + 1):last
    cc <- col[t + 1]
    r <- rle(cc)
    ends <- cumsum(r$lengths)
    starts <- c(1, head(ends, -1) + 1)
    data.frame(id = i, start = t[starts] - 1, stop = t[ends], w = W[i, r$values],
               status = ifelse(seq_along(ends) == length(ends) & x[i] <= t_max, st[i], 0))
  }))
  # each row its own subject entering state 0 at its start (delayed entry): survfit's multi-state
  # code keeps one weight per subject, and the weights here change over a clone's follow-up
  rows$row <- seq_len(nrow(rows))
  fit <- survfit(Surv(start, stop, factor(status, levels = 0:2)) ~ 1, data = rows, weights = w, id = row)
  cif_at <- function(times) {
    s <- summary(fit, times = times, extend = TRUE)
    s$pstate[, which(s$states == "1")]
  }
  after <- rows[rows$stop > dd & rows$stop <= max(p$horizons), ]
  after$start <- pmax(after$start, dd)
  after$arm <- as.numeric(which == "start")
  list(risk = cif_at(p$horizons), rmst = sum(1 - cif_at(0:(p$tau - 1))),
       w_at_exit = W[cbind(seq_len(n), col[pmin(x, t_max) + 1])], after = after)
}

s1 <- arm("start")
s0 <- arm("never")
# the hazard ratio of a place after the treatment day: weighted Cox model of both arms' clones,
# robust variance clustered by episode
both <- rbind(s1$after, s0$after)
hr <- coxph(Surv(start, stop, status == 1) ~ arm, data = both, weights = w, cluster = id, ties = "efron",
            control = coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100))
out <- list(log_hr = unname(coef(hr)), log_hr_robust_se = unname(sqrt(diag(vcov(hr)))),
  risk_start = s1$risk, risk_never = s0$risk, rmst_start = s1$rmst, rmst_never = s0$rmst,
  beta_start = A$beta, gamma_start = A$gamma, beta_loss = C$beta, gamma_loss = C$gamma,
  converged = c(A$converged, C$converged),
  w_start_at_exit = s1$w_at_exit, w_never_at_exit = s0$w_at_exit
)

# The marginal structural Cox model: stabilised weights (marginal numerator, covariate denominator,
# for starting and for loss to follow-up), one row per episode and day, weighted coxph with the
# robust variance clustered by pupil.
grid <- p$msm_grid
K <- length(grid) - 1
mid <- log1p((grid[-length(grid)] + grid[-1]) / 2)
tau_k <- mid - mean(mid)
H <- p$msm_horizon
none <- matrix(0, n, 0)
AD <- hazards(pmin(start + 1, d$exit), ev_a, ifelse(ev_a, start, 0))$H
AN <- hazards(pmin(start + 1, d$exit), ev_a, ifelse(ev_a, start, 0), Zm = none)$H
CD <- hazards(d$exit + 1, d$status == 0, d$exit)$H
CN <- hazards(d$exit + 1, d$status == 0, d$exit, Zm = none)$H
ratio_untreated <- t(apply((1 - AN) / (1 - AD), 1, cumprod))     # through interval k
sw_c <- cbind(1, t(apply((1 - CN) / (1 - CD), 1, cumprod)))       # column k: intervals < k
msm_rows <- do.call(rbind, lapply(seq_len(n), function(i) {
  last <- min(d$exit[i], H)
  tt <- 1:last
  k <- pmin(pmax(interval_of(tt - 1), 1), K)
  a <- as.numeric(ev_a[i] & tt - 1 >= start[i])
  if (ev_a[i]) {
    ks <- interval_of(start[i])
    before <- if (ks > 1) ratio_untreated[i, ks - 1] else 1
    sw_a <- ifelse(a == 1, before * AN[i, ks] / AD[i, ks], ratio_untreated[i, k])
  } else {
    sw_a <- ratio_untreated[i, k]
  }
  data.frame(t0 = tt - 1, t1 = tt, a = a, sw = sw_a * sw_c[cbind(i, k)], pupil = d$pupil[i],
             event = as.integer(tt == d$exit[i] & d$status[i] == 1 & d$exit[i] <= H))
}))
msm <- coxph(Surv(t0, t1, event) ~ a, data = msm_rows, weights = sw, cluster = pupil, ties = "efron",
             control = coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100))
out$msm_log_hr <- unname(coef(msm))
out$msm_robust_se <- unname(sqrt(diag(vcov(msm))))
out$msm_sw_mean <- mean(msm_rows$sw)

# g-computation: cause-specific Cox models (place, exemption) on start-stop rows with the
# intervention from its start, each episode's cumulative incidence under "start on day d" and
# "never" from the Breslow increments, averaged over the episodes.
started <- is.finite(start) & start < d$exit
g_rows <- do.call(rbind, lapply(seq_len(n), function(i) {
  if (started[i]) {
    data.frame(i = i, start = c(0, start[i]), stop = c(start[i], d$exit[i]), a = c(0, 1), cause = c(0, d$status[i]))
  } else {
    data.frame(i = i, start = 0, stop = d$exit[i], a = 0, cause = d$status[i])
  }
}))
g_rows <- cbind(g_rows, d[g_rows$i, p$covariates])
form <- function(c) as.formula(paste0("Surv(start, stop, cause == ", c, ") ~ ",
                                      paste(c(p$covariates, "a"), collapse = " + ")))
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100)
increments <- function(fit) {
  bh <- basehaz(fit, centered = FALSE)
  inc <- numeric(t_max)
  h <- diff(c(0, bh$hazard))
  keep <- bh$time >= 1 & bh$time <= t_max
  inc[bh$time[keep]] <- h[keep]
  inc
}
g_fits <- lapply(1:2, function(c) coxph(form(c), data = g_rows, ties = "efron", control = ctl))
g_arm <- function(which) {
  a <- if (which == "start") as.numeric(1:t_max > dd) else numeric(t_max)
  lam <- lapply(g_fits, function(fit) {
    b <- coef(fit)
    lp <- as.vector(Z %*% b[p$covariates])
    outer(exp(lp), increments(fit) * exp(b["a"] * a))
  })
  surv <- exp(-t(apply(lam[[1]] + lam[[2]], 1, cumsum)))
  before <- cbind(1, surv[, -t_max])
  cif <- c(0, colMeans(t(apply(before * lam[[1]], 1, cumsum))))
  list(risk = cif[p$horizons + 1], rmst = sum(1 - cif[1:p$tau]))
}
g1 <- g_arm("start")
g0 <- g_arm("never")
out$g_risk_start <- g1$risk
out$g_risk_never <- g0$risk
out$g_rmst_start <- g1$rmst
out$g_rmst_never <- g0$rmst
write(toJSON(out, digits = 15, auto_unbox = FALSE), "target_trial_reference.json")
