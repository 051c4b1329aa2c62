# Target-trial emulation of "start the intervention on treat_day vs never" (clone-censor-weight) in R,
# vectorised over episodes: the peer of verzuimmodel.survival.target_trial in
# benchmarks/bench_target_trial.py. Per estimate:
#   - person-interval rows of the episodes (one row per episode and interval of days it is at risk);
#   - glm(binomial) of starting the intervention: one intercept per interval, covariates,
#     covariates x centred log-time, covariates once more in the treatment-day interval;
#   - glm(binomial) of loss to follow-up: interval intercepts, covariates, covariates x log-time;
#   - each clone's inverse probability weights from the fitted hazards;
#   - the clones' start-stop rows (a row per clone and run of days with the same weight) and the weighted
#     Aalen-Johansen cumulative incidence of a place (survfit; exemption competing; each row its own id);
#   - the hazard ratio after the treatment day: coxph(weights, cluster = episode).
# Bootstrap replicates resample pupils (frequency weights) and repeat all of it.
#
# Usage: Rscript target_trial_bench.R trial.csv params.json n_boot seed out.json [cox_per_replicate]
#   trial.csv: entry, exit, status (1 place, 2 exemption, 0 censored), start (-1: never), pupil, covariates
#   params.json: grid, treat_day, grace_days, horizons, tau, covariates
# Writes the point estimates on all episodes and the seconds spent in each step to out.json.
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})
args <- commandArgs(TRUE)
d <- read.csv(args[1])
p <- fromJSON(args[2])
n_boot <- as.integer(args[3])
set.seed(as.integer(args[4]))
cox_per_replicate <- length(args) < 6 || args[6] != "0"
stopifnot(all(d$entry == 0))              # every episode followed from its first day of absence

grid <- p$grid
K <- length(grid) - 1
mid <- log1p((grid[-length(grid)] + grid[-1]) / 2)
tau_k <- mid - mean(mid)
dd <- p$treat_day
g <- p$grace_days
t_max <- max(c(p$horizons, p$tau))
days <- 0:t_max
col_base <- pmin(pmax(findInterval(days - 1, grid), 1), K)   # interval holding day t - 1
K_use <- max(col_base)                                      # intervals the weights up to t_max need
kd <- findInterval(dd, grid)                                # the treatment-day (grace) interval
ctl <- glm.control(epsilon = 1e-12, maxit = 100)
Z_all <- as.matrix(d[, p$covariates])
start_all <- ifelse(d$start < 0, Inf, d$start)

# Discrete-time hazards (n x K_use): a row per unit and interval k with grid[k] < end, y = 1 in the
# interval holding the event day; logit h = alpha_k + z'b + tau_k z'g (+ z'c in interval `own`);
# intervals without events have h = 0.
hazards <- function(Z, f, end, event, event_day, own = NA) {
  n <- nrow(Z)
  q <- ncol(Z)
  m <- findInterval(end, grid[1:K], left.open = TRUE)         # number of intervals with grid[k] < end
  i <- rep.int(seq_len(n), m)
  k <- sequence(m)
  ev_k <- ifelse(event, findInterval(event_day, grid), 0L)
  y <- as.numeric(k == ev_k[i])
  live <- sort(unique(k[y == 1]))
  keep <- k %in% live
  i <- i[keep]
  k <- k[keep]
  y <- y[keep]
  X <- Z[i, , drop = FALSE]
  XT <- X * tau_k[k]
  kf <- factor(k, levels = live)
  w <- f[i]
  fit <- if (is.na(own)) {
    glm(y ~ 0 + kf + X + XT, family = binomial, weights = w, control = ctl)
  } else {
    XO <- X * (k == own)
    glm(y ~ 0 + kf + X + XT + XO, family = binomial, weights = w, control = ctl)
  }
  cf <- coef(fit)
  conv <- fit$converged
  rm(fit, X, XT, i, k, y, w)
  cf[is.na(cf)] <- 0                                        # not identified (glm's NA): no effect
  L <- length(live)
  alpha <- rep(-Inf, K)
  alpha[live] <- cf[seq_len(L)]
  b <- cf[L + seq_len(q)]
  gm <- cf[L + q + seq_len(q)]
  eta <- matrix(alpha[1:K_use], n, K_use, byrow = TRUE) + drop(Z %*% b) + outer(drop(Z %*% gm), tau_k[1:K_use])
  if (!is.na(own)) eta[, own] <- eta[, own] + drop(Z %*% cf[L + 2 * q + seq_len(q)])
  list(H = pmin(plogis(eta), 1 - 1e-9), converged = conv)
}

survival_of <- function(H) {              # column k: product of 1 - h over the intervals before k
  S <- matrix(1, nrow(H), ncol(H) + 1)
  for (k in seq_len(ncol(H))) S[, k + 1] <- S[, k] * (1 - H[, k])
  S
}

# One estimate on the episodes with frequency weights f > 0.
estimate <- function(f, with_cox) {
  keep <- f > 0
  f <- f[keep]
  Z <- Z_all[keep, , drop = FALSE]
  exit <- d$exit[keep]
  status <- d$status[keep]
  start <- start_all[keep]
  n <- length(f)
  t0 <- proc.time()[["elapsed"]]
  ev_a <- is.finite(start) & start < exit
  A <- hazards(Z, f, pmin(start + 1, exit), ev_a, ifelse(ev_a, start, 0), own = kd)
  C <- hazards(Z, f, exit + 1, status == 0, exit)
  t1 <- proc.time()[["elapsed"]]
  SA <- survival_of(A$H)
  SC <- survival_of(C$H)
  out <- list(converged = c(A$converged, C$converged))
  after <- list()
  t_weights <- proc.time()[["elapsed"]] - t1
  t_survfit <- 0
  for (which in c("start", "never")) {
    ta <- proc.time()[["elapsed"]]
    x <- exit
    st <- status
    started <- start < exit
    W <- 1 / (SA[, 2:(K_use + 1)] * SC[, 1:K_use])
    col <- col_base
    if (which == "never") {
      x[started] <- start[started]
      st[started] <- 0
    } else {
      early <- started & start < dd
      x[early] <- start[early]
      st[early] <- 0
      late <- !early & !(started & start <= dd + g) & exit > dd + g
      x[late] <- dd + g
      st[late] <- 0
      pstart <- SA[, kd] * A$H[, kd]
      inv <- ifelse(pstart > 0, 1 / pstart, 0)
      W[, kd] <- 1 / (SA[, kd] * SC[, kd])
      W[, (kd + 1):K_use] <- inv / SC[, (kd + 1):K_use]
      W <- cbind(W, inv / SC[, kd])
      col[days == dd + g + 1] <- K_use + 1
    }
    runs <- rle(col[-1])                     # days 1..t_max: runs of days with the same weight column
    b <- cumsum(runs$lengths)                # run r covers days (ra[r], b[r]] with weight column rc[r]
    ra <- c(0, head(b, -1))
    rc <- runs$values
    last <- pmin(x, t_max)
    m <- findInterval(last, ra, left.open = TRUE)            # runs with a < last
    i <- rep.int(seq_len(n), m)
    r <- sequence(m)
    rows <- data.frame(id = i, start = ra[r], stop = pmin(b[r], x[i]), w = W[cbind(i, rc[r])] * f[i],
                       status = ifelse(r == m[i] & x[i] <= t_max, st[i], 0))
    rows$row <- seq_len(nrow(rows))
    tb <- proc.time()[["elapsed"]]
    # each row its own subject entering state 0 at its start: survfit's multi-state code keeps one
    # weight per subject, and a clone's weight changes over its follow-up
    fit <- survfit(Surv(start, stop, factor(status, levels = 0:2)) ~ 1, data = rows, weights = w, id = row)
    cif_at <- function(times) {
      s <- summary(fit, times = times, extend = TRUE)
      s$pstate[, which(s$states == "1")]
    }
    out[[paste0("risk_", which)]] <- cif_at(p$horizons)
    out[[paste0("rmst_", which)]] <- sum(1 - cif_at(0:(p$tau - 1)))
    tc <- proc.time()[["elapsed"]]
    t_weights <- t_weights + (tb - ta)
    t_survfit <- t_survfit + (tc - tb)
    if (with_cox) {
      a <- rows[rows$stop > dd & rows$stop <= max(p$horizons), ]
      a$start <- pmax(a$start, dd)
      a$arm <- as.numeric(which == "start")
      after[[which]] <- a
    }
    rm(fit, rows, W)
  }
  t2 <- proc.time()[["elapsed"]]
  t_cox <- 0
  if (with_cox) {
    both <- rbind(after$start, after$never)
    both <- both[both$w > 0, ]
    hr <- coxph(Surv(start, stop, status == 1) ~ arm, data = both, weights = w, cluster = id, ties = "efron",
                control = coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100))
    out$log_hr <- unname(coef(hr))
    out$log_hr_robust_se <- unname(sqrt(diag(vcov(hr))))
    t_cox <- proc.time()[["elapsed"]] - t2
  }
  out$seconds <- list(glm = t1 - t0, weights = t_weights, survfit = t_survfit,
                      cox = t_cox, total = proc.time()[["elapsed"]] - t0)
  out
}

t0 <- proc.time()[["elapsed"]]
point <- estimate(rep(1, nrow(d)), TRUE)
message(sprintf("R point estimate: %.1f s (glm %.1f, weights %.1f, survfit %.1f, coxph %.1f)",
                point$seconds$total, point$seconds$glm, point$seconds$weights, point$seconds$survfit,
                point$seconds$cox))
pupil <- match(d$pupil, unique(d$pupil))
P <- max(pupil)
reps <- list()
for (b in seq_len(n_boot)) {
  f <- tabulate(sample.int(P, P, replace = TRUE), P)[pupil]
  reps[[b]] <- estimate(f, cox_per_replicate)
  s <- reps[[b]]$seconds
  message(sprintf("R bootstrap replicate %d: %.1f s (glm %.1f, weights %.1f, survfit %.1f, coxph %.1f)",
                  b, s$total, s$glm, s$weights, s$survfit, s$cox))
}
status_lines <- readLines("/proc/self/status")
hwm <- status_lines[startsWith(status_lines, "VmHWM")]
peak_kib <- as.numeric(gsub("[^0-9]", "", hwm))
res <- list(point = point, replicates = reps, peak_gib = peak_kib / 1024^2,
            elapsed = proc.time()[["elapsed"]] - t0, r_version = R.version.string,
            survival_version = as.character(packageVersion("survival")))
write(toJSON(res, digits = 15, auto_unbox = TRUE), args[5])
