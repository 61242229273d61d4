"""Benchmarks and the SMS-pumping attack simulation (``make bench``, ``make attack-sim``).

Not part of the test suite: nothing here is collected by pytest, and nothing
in the package imports it. See ``BENCHMARKS.md`` at the repository root.
"""
