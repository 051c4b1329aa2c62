"""Calibration of simulated cohorts against published figures (filled in below)."""
