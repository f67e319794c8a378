"""Scenario sweeps: specs, runs on local processes or Ray, result tables."""
