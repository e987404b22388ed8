"""Benchmarks and timing scripts (outside the package): ``python -m benchmarks.paper`` reproduces the paper."""
