"""Regression benchmarks: the latency of one estimate (encode, surrogate, backward to theta) for
every estimator x problem it applies to, on CPU and on CUDA when there is one.

Save a baseline:   python -m bench.benchcheck save
Compare with it:   python -m bench.benchcheck compare     (one line per regressed benchmark)
"""

import pytest
import torch

from bench.presets import applicable_pairs, build
from bench.timing import one_estimate_step

N_SAMPLES = 10
PAIRS = applicable_pairs()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


def synchronised(step, device):
    if device == "cuda":
        def run():
            out = step()
            torch.cuda.synchronize()
            return out
        return run
    return step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("estimator,problem", PAIRS, ids=[f"{e}-{p}" for e, p in PAIRS])
def test_latency_of_one_estimate(benchmark, slowed, estimator, problem, device):
    step = one_estimate_step(build("problem", problem), build("estimator", estimator), N_SAMPLES, device,
                             torch.float32)
    benchmark.group = f"latency {problem}"
    benchmark.extra_info.update(estimator=estimator, problem=problem, n_samples=N_SAMPLES, device=device)
    grads = benchmark(slowed(synchronised(step, device)))
    assert all(g is None or torch.isfinite(g).all() for g in grads)
