"""The opt-in torch.compile path (the whole chunk step compiled): same noise, the same estimates as
eager up to rounding, the same statistics; stateful estimators refused."""

import pytest
import torch

from bench import compiled as compiled_module
from bench.harness import Harness
from bench.problems import make_problem
from estimators import ConfigError, make_estimator

CASES = [("score_function", "gaussian_quadratic", 1), ("reparameterization", "gaussian_quadratic", 3),
         ("score_function", "policy_mlp", 2), ("disarm", "bernoulli_toy", 3)]


@pytest.mark.parametrize("ename,pname,n", CASES, ids=[f"{e}-{p}" for e, p, _ in CASES])
def test_compiled_estimates_are_the_eager_ones(ename, pname, n):
    p, e = make_problem(pname), make_estimator(ename)
    kw = dict(n_samples=n, chunk_elements=4096)  # several chunks, and a last one of another size
    eager = Harness(p, e, **kw).run(5000, seed=2, keep_estimates=True)
    compiled = Harness(p, e, compile=True, **kw).run(5000, seed=2, keep_estimates=True)
    torch.testing.assert_close(compiled.estimates, eager.estimates, rtol=1e-4, atol=1e-5)
    for a, b in zip(eager.rows, compiled.rows):
        assert b["variance"] == pytest.approx(a["variance"], rel=1e-4)
        assert b["bias"] == pytest.approx(a["bias"], rel=1e-2, abs=1e-5)


# theta = phi: the compiled step sums each phi tensor on its own (no estimates kept), over one run
# or several at their own theta
FAST = [("score_function", "gaussian_quadratic", {"dim": 3}, 2, 1), ("reparameterization", "gaussian_quadratic", {}, 1, 1),
        ("disarm", "bernoulli_quadratic", {}, 1, 1), ("score_function", "gaussian_quadratic", {"dim": 2}, 1, 3)]


@pytest.mark.parametrize("ename,pname,options,n,runs", FAST, ids=[f"{e}-{p}-{r}runs" for e, p, _, _, r in FAST])
def test_compiled_statistics_without_the_estimates_are_the_eager_ones(ename, pname, options, n, runs):
    p, e = make_problem(pname, options), make_estimator(ename)
    theta = {k: v.expand(runs, *v.shape) + 0.1 * torch.arange(runs).reshape(-1, *[1] * v.dim())
             for k, v in p.init_params("cpu", torch.float32).items()}
    kw = dict(n_samples=n, chunk_elements=4096, theta=theta)  # several chunks, and a last one of another size
    eager = Harness(p, e, **kw).run(5000, seed=2)
    compiled = Harness(p, e, compile=True, **kw).run(5000, seed=2)
    assert len(compiled.rows) == len(eager.rows) == runs * (len(theta) + 1)
    for a, b in zip(eager.rows, compiled.rows):
        assert (b["run"], b["param"]) == (a["run"], a["param"])
        for key in ("variance", "variance_se", "mse"):
            assert b[key] == pytest.approx(a[key], rel=1e-4)
        assert b["bias"] == pytest.approx(a["bias"], rel=1e-2, abs=1e-5)


def test_compile_refuses_stateful_estimators():
    with pytest.raises(ConfigError, match="compile=True is not allowed: .*keeps state"):
        Harness(make_problem("gaussian_quadratic"), make_estimator("score_function_baseline"), n_samples=2,
                compile=True)


@pytest.mark.parametrize("ename,options,pname", [("exact", {}, "gaussian_quadratic"), ("reinmax", {}, "bernoulli_toy"),
                                                  ("score_function_baseline", {"baseline": "optimal"}, "gaussian_quadratic")])
def test_compile_refuses_estimators_that_take_gradients_themselves(ename, options, pname):
    """Their surrogates call autograd (or per-sample vmaps), which cannot run inside torch.func.grad:
    one line naming compile when the harness is built, not Dynamo's error in the middle of a job."""
    with pytest.raises(ConfigError, match=r"compile=True is not allowed: .* does not run inside torch\.func\.grad.*"
                                          r"use compile=false"):
        Harness(make_problem(pname), make_estimator(ename, options), n_samples=4, compile=True)


def test_chunks_are_whole_batches_so_the_step_compiles_once_per_chunk_size():
    from torch._dynamo.utils import counters

    h = Harness(make_problem("gaussian_quadratic"), make_estimator("score_function"), n_samples=1,
                chunk_elements=3000, compile=True)
    counters.clear()
    h.run(50_000, seed=0)  # batches of 49 replicates; 17 chunks of 2989 and a last, shorter one
    assert counters["stats"]["unique_graphs"] == 2


def test_compiled_counts_nonfinite_estimates_as_eager_does():
    from tests.harness.test_batched import _SometimesInfinite  # f = inf with probability 0.135 %

    kw = dict(n_samples=1, chunk_elements=4096)
    eager = Harness(_SometimesInfinite(), make_estimator("score_function"), **kw).run(20_000, seed=1)
    compiled = Harness(_SometimesInfinite(), make_estimator("score_function"), compile=True, **kw).run(20_000, seed=1)
    assert compiled.n_nonfinite == eager.n_nonfinite and eager.n_nonfinite[0] > 0
    assert compiled.rows[-1]["variance"] == pytest.approx(eager.rows[-1]["variance"], rel=1e-4)


@pytest.mark.parametrize("guards", ["varying", "full"])
def test_each_harness_compiles_its_own_step(guards, monkeypatch):
    """Harnesses share the chunk step's code and guard only what varies between calls (not the
    estimator's identity): two compiled harnesses with same-shaped inputs, run in turn, still each
    give their own eager estimates; so with Dynamo's full guards (a torch without
    ``isolate_recompiles``)."""
    if guards == "full":
        monkeypatch.setattr(compiled_module, "_isolated_with_varying_guards", dict)
    p = make_problem("gaussian_quadratic")
    kw = dict(n_samples=2, chunk_elements=4096)
    names = ("score_function", "reparameterization")
    compiled = [Harness(p, make_estimator(name), compile=True, **kw) for name in names]
    for name, h in [*zip(names, compiled), *zip(names, compiled)]:
        eager = Harness(p, make_estimator(name), **kw).run(3000, seed=4, keep_estimates=True)
        got = h.run(3000, seed=4, keep_estimates=True)
        torch.testing.assert_close(got.estimates, eager.estimates, rtol=1e-4, atol=1e-5)


def test_a_compiled_harness_recompiles_where_the_batches_change():
    """The guards it keeps include the static ints: runs of other lengths (other batch sizes,
    a chunk that starts mid-batch) on one harness equal eager ones."""
    p, e = make_problem("gaussian_quadratic"), make_estimator("score_function")
    kw = dict(n_samples=1, chunk_elements=3000)
    compiled = Harness(p, e, compile=True, **kw)
    for reps in (5000, 50_000, 2500):
        eager = Harness(p, e, **kw).run(reps, seed=reps, keep_estimates=True)
        got = compiled.run(reps, seed=reps, keep_estimates=True)
        torch.testing.assert_close(got.estimates, eager.estimates, rtol=1e-4, atol=1e-5)
        assert got.rows[-1]["variance"] == pytest.approx(eager.rows[-1]["variance"], rel=1e-4)


@pytest.mark.parametrize("torch_threads,expected", [(1, 1), (2, 1), (16, 15)])
def test_the_compiled_step_leaves_a_core_to_the_samplers_second_thread(torch_threads, expected, monkeypatch):
    monkeypatch.setattr(compiled_module.torch, "get_num_threads", lambda: torch_threads)
    assert compiled_module.compiled_cpu_threads() == expected
