"""CUDA paths: device-placed tensors and synchronised timing. Skipped without a CUDA device."""

import math

import pytest
import torch

from bench.harness import measure_estimates as measure
from bench.presets import applicable_pairs, build
from bench.problems import make_problem
from bench.timing import time_one_estimate
from estimators import make_estimator
from tests.test_compile import CASES as COMPILE_CASES

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


@pytest.mark.parametrize("estimator,problem", applicable_pairs())
def test_every_applicable_pair_runs_on_cuda(estimator, problem):
    """Every registered estimator on every problem it applies to, with the tensors on the GPU: no
    device mismatch, finite statistics, the exact gradient computed there too."""
    m = measure(build("problem", problem), build("estimator", estimator), n_samples=4, n_replicates=2000, seed=0,
                device="cuda")
    assert m.status() == "ok", m.status()
    total = m.rows[-1]  # the rows before it may break the total down (NaN where a part has no variance)
    assert math.isfinite(total["variance"]) and total["variance_se"] >= 0  # 0: an exact estimator


@pytest.mark.parametrize("ename,pname,n", COMPILE_CASES, ids=[f"{e}-{p}" for e, p, _ in COMPILE_CASES])
def test_cuda_compiled_estimates_are_the_eager_ones(ename, pname, n):
    from bench.harness import Harness

    p, e = make_problem(pname), make_estimator(ename)
    kw = dict(n_samples=n, chunk_elements=4096, device="cuda")
    eager = Harness(p, e, **kw).run(5000, seed=2, keep_estimates=True)
    compiled = Harness(p, e, compile=True, **kw).run(5000, seed=2, keep_estimates=True)
    torch.testing.assert_close(compiled.estimates, eager.estimates, rtol=1e-4, atol=1e-5)


def test_cuda_trainer_runs_batched_seeds():
    from bench.training import train

    done = train(make_problem("policy_mlp"), make_estimator("score_function_baseline", {"baseline": "ema"}),
                 {"name": "adam", "lr": 0.01}, n_samples=10, steps=20, n_seeds=8, log_every=10, device="cuda",
                 variance_every=10, variance_replicates=1000)
    assert len(done.curves) == 8 * 3 and (done.curves.status == "ok").all()
    assert torch.isfinite(torch.tensor(done.curves.objective.to_numpy())).all()
    assert len(done.variance) > 0


def test_cuda_default_chunk_is_the_gpus():
    from bench.harness import CUDA_CHUNK_ELEMENTS, Harness

    h = Harness(make_problem("gaussian_quadratic"), make_estimator("score_function"), n_samples=1, device="cuda")
    assert h.chunk == CUDA_CHUNK_ELEMENTS  # one element per replicate
