"""Benchmarks (`make bench-*`): not run in CI."""
