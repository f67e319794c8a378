"""Hostile-input corpus (issue 21): a package, so its test modules may share basenames with
those of tests/simcity (test_carbon_files); helpers live in tests/ and import by name."""
