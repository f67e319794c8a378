"""Scenario files into frozen, validated models: the scenario, its city and monitoring
sections, overrides and the device catalogue. The bottom of `simcity`: imports only errors."""
