"""The benchmarks' shared pieces: ``BENCH_SLOWDOWN=k`` runs every benchmarked call k times (an
injected slowdown, with which ``python -m bench.benchcheck calibrate`` shows a regression is caught)."""

import os

import pytest


@pytest.fixture
def slowed():
    """Wraps a benchmarked function so that it runs ``BENCH_SLOWDOWN`` times per call."""
    times = max(1, round(float(os.environ.get("BENCH_SLOWDOWN", "1"))))

    def wrap(fn):
        if times == 1:
            return fn

        def repeated(*args, **kwargs):
            for _ in range(times - 1):
                fn(*args, **kwargs)
            return fn(*args, **kwargs)
        return repeated

    return wrap
