"""Benchmarks: each module compares cleanroom against a named baseline in one run."""
