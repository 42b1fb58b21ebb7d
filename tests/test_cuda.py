"""CUDA paths: device-placed tensors and synchronised timing. Skipped without a CUDA device."""

import pytest
import torch

from bench.harness import measure_estimates as measure
from bench.problems import make_problem
from bench.timing import time_one_estimate
from estimators import make_estimator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("ename", ["score_function", "score_function_baseline", "reparameterization"])
@pytest.mark.parametrize("pname", ["gaussian_quadratic", "policy_mlp"])
def test_cuda_matches_cpu_statistically(pname, ename):
    p, e = make_problem(pname), make_estimator(ename)
    cpu = measure(p, e, n_samples=4, n_replicates=50_000, seed=0, device="cpu").rows[-1]
    gpu = measure(p, e, n_samples=4, n_replicates=50_000, seed=0, device="cuda").rows[-1]
    assert gpu["bias_significant"] is False
    se = (cpu["variance_se"] ** 2 + gpu["variance_se"] ** 2) ** 0.5
    assert abs(cpu["variance"] - gpu["variance"]) < 4 * se


def test_cuda_timing_runs():
    lat = time_one_estimate(make_problem("policy_mlp"), make_estimator("score_function"), 10, "cuda",
                            torch.float32, min_run_time=0.05)
    assert lat.median_s > 0


def test_cuda_stream_is_the_two_generators_halves():
    from estimators.sampling import SPLIT_MIN_ELEMENTS, Sampler, second_seed

    n = 2 * SPLIT_MIN_ELEMENTS + 1
    got = Sampler.seeded(4, "cuda").normal((n,), torch.zeros((), device="cuda"))
    first = torch.Generator(device="cuda").manual_seed(4)
    second = torch.Generator(device="cuda").manual_seed(second_seed(4))
    want = torch.cat([torch.randn((n + 1) // 2, generator=first, device="cuda"),
                      torch.randn(n // 2, generator=second, device="cuda")])
    assert torch.equal(got, want)
