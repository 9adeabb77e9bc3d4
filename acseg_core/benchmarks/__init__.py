"""Benchmarks behind ``acseg-core bench``: scripts that print figures, never tests."""
