"""Scenario logic the notebooks call: each scenario's runs, metrics and figures live here, unit-tested."""
