"""gradient-estimator-bench: problems, the batched measuring harness, timing, results and the
command-line entry points ``python -m bench.run``, ``python -m bench.perf``."""
