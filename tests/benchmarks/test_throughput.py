"""Regression benchmarks: harness throughput (replicates per second = n_replicates / time)."""

import pytest
import torch

from bench.harness import Harness
from bench.problems import make_problem
from estimators import make_estimator

CASES = [("gaussian_quadratic", "score_function", 1), ("gaussian_quadratic", "reparameterization", 1),
         ("gaussian_quadratic", "score_function", 10), ("policy_mlp", "score_function", 1),
         ("bernoulli_quadratic", "disarm", 1), ("categorical_bandit", "score_function_baseline", 10)]
R = 100_000


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
@pytest.mark.parametrize("problem,estimator,n", CASES, ids=[f"{p}-{e}-n{n}" for p, e, n in CASES])
def test_harness_throughput(benchmark, slowed, problem, estimator, n, device):
    harness = Harness(make_problem(problem), make_estimator(estimator), n_samples=n, device=device)
    benchmark.group = "harness throughput (1e5 replicates)"
    benchmark.extra_info.update(problem=problem, estimator=estimator, n_samples=n, n_replicates=R, device=device)
    m = benchmark(slowed(harness.run), R)
    assert m.status() == "ok" and m.rows[-1]["bias_significant"] is False
