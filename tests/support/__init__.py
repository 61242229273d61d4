"""Helpers shared by the test suites and the benchmarks (servers.py: real servers on loopback)."""
