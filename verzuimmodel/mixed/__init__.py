"""Mixed-effects models of absence: linear, Poisson and negative binomial, with one or crossed random intercepts."""
