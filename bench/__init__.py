"""Benchmarks; results are summarised in BENCHMARKS.md."""
