"""gradient-estimator-bench: problems, the batched measuring harness, statistics, timing, results
and the command-line entry points ``python -m bench.run`` (jobs and sweeps), ``bench.report``
(figures), ``bench.perf`` (speed), ``bench.applicability``, ``bench.regression`` and
``bench.reference``."""
