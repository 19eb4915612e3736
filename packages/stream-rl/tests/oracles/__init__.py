"""Slow, obvious reference implementations used by the tests (and benchmarks as baselines)."""
