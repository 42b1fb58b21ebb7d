"""The latency timer starts from a collected heap (no wall-clock is asserted)."""

import gc
import weakref

import torch

from bench.problems import make_problem
from bench.timing import time_one_estimate
from estimators import make_estimator


def test_timing_collects_the_garbage_left_before_it():
    """Garbage left by a job's statistics run made the timed steps up to 4x slower; the timer
    collects it first. A reference cycle left here must be gone when the timing starts."""

    class Cycle:
        pass

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    gc.disable()  # so that only the timer can collect the cycle
    try:
        lat = time_one_estimate(make_problem("gaussian_quadratic"), make_estimator("score_function"), 2, "cpu",
                                torch.float32, min_run_time=0.01)
    finally:
        gc.enable()
    assert alive() is None and lat.median_s > 0
