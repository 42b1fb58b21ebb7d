"""The statistics mean what they say: batch-means standard errors independent of the chunking and
valid for the EMA baseline's dependent estimates, one bias test per job in phi, floors below which
nothing is printed, infinite moments refused or marked, noise in the job's dtype, REBAR finite."""

import math

import numpy as np
import pytest
import torch

from bench.calibrate import InjectedBias
from bench.geometry import with_runs
from bench.harness import Harness, measure_estimates as measure
from bench.problems import make_problem
from bench.statistics import (MIN_REPLICATES_FOR_BIAS_TEST, MIN_REPLICATES_FOR_SE, GradientMoments, Projection,
                              batch_size)
from estimators import Sampler, make_estimator
from estimators.sampling import PredrawnSampler


def _moments_from(G: torch.Tensor, chunks: list[int], jacobian=None, batch: int = 7):
    proj = Projection({"a": 3, "b": 2}, jacobian)
    mom = GradientMoments(proj, G.shape[0], G.shape[2], "cpu", batch=batch)
    lo = 0
    for c in chunks:
        mom.update(G[:, :, lo:lo + c])
        lo += c
    assert lo == G.shape[2]
    return mom.result(torch.zeros(G.shape[0], G.shape[1], dtype=torch.float64), dtype=torch.float64,
                      min_se=10, min_bias_test=10)


@pytest.mark.parametrize("jacobian", [None, "random"])
def test_statistics_do_not_depend_on_the_chunking(jacobian):
    g = torch.Generator().manual_seed(0)
    J = torch.randn(2, 4, 5, generator=g, dtype=torch.float64) if jacobian else None
    P = 4 if jacobian else 5
    G = torch.randn(2, P, 100, generator=g, dtype=torch.float64) * torch.arange(1, P + 1)[:, None] + 0.3
    whole = _moments_from(G, [100], J)
    for chunks in ([1] * 100, [3, 50, 1, 46], [7] * 14 + [2]):
        other = _moments_from(G, chunks, J)
        for (rows_a, _), (rows_b, _) in zip(whole, other):
            for ra, rb in zip(rows_a, rows_b):
                for key in ("variance", "variance_se", "bias", "mse", "bias_p_value"):
                    assert rb[key] == pytest.approx(ra[key], rel=1e-12, abs=1e-15), key


@pytest.mark.parametrize("jacobian", [None, "random"])
def test_batch_means_with_one_replicate_batches_is_the_iid_delta_method(jacobian):
    """With batches of one replicate, the standard error is the plug-in delta-method one plus the
    second-order term ``2 v^2 / (R (R - 1))``, computed directly from the estimates (mapped to theta)
    here."""
    g = torch.Generator().manual_seed(1)
    J = torch.randn(1, 4, 5, generator=g, dtype=torch.float64) if jacobian else None
    G = torch.randn(1, 4 if jacobian else 5, 400, generator=g, dtype=torch.float64) ** 2
    # the shift is the first chunk's mean, so the mean deviation (and its term in psi) is not 0
    (rows, _), = _moments_from(G, [50, 350], J, batch=1)
    x = (G[0].T @ J[0] if jacobian else G[0].T).numpy()
    mu = x.mean(0)
    for row, cols in zip(rows, [[0, 1, 2], [3, 4], [0, 1, 2, 3, 4]]):
        d = x[:, cols] - mu[cols]
        psi = (d * d).sum(1)
        R = len(x)
        assert row["variance"] == pytest.approx(psi.sum() / (R - 1), rel=1e-12)
        v = psi.sum() / (R - 1)
        first = psi.std(ddof=1) ** 2 / R * (R / (R - 1)) ** 2
        assert row["variance_se"] == pytest.approx(math.sqrt(first + 2 * v * v / (R * (R - 1))), rel=1e-9)


def test_no_zero_standard_error_with_one_replicate_chunks():
    """The audit's case: ARM, one replicate per chunk; the old formula gave variance_se = 0 for
    some seeds (a one-replicate first chunk)."""
    p = make_problem("bernoulli_quadratic", {"dim": 4})
    theta = {k: v.expand(50, *v.shape[1:]).clone() for k, v in with_runs(None, p, "cpu", torch.float32).items()}
    h = Harness(p, make_estimator("arm"), n_samples=1, theta=theta, chunk_elements=2 * 4 * 50)
    assert h.chunk == 1
    m = h.run(MIN_REPLICATES_FOR_SE, seed=0)
    se = np.array([r["variance_se"] for r in m.rows if r["param"] == "total"])
    assert (se > 0).all() and np.isfinite(se).all()


def test_ema_standard_error_holds_for_its_dependent_estimates():
    """decay 0.99: the old independent-replicates formula understated the spread of `variance` by
    a third. Over 300 independent jobs the spread of `variance` must match the rms of the reported
    `variance_se`: the ratio estimated from 300 jobs has a standard error of about
    1/sqrt(2 * 299) = 4 %, so 0.85-1.15 is about four of them."""
    p = make_problem("bernoulli_toy")
    theta = {k: v.expand(300, *v.shape[1:]).clone() for k, v in with_runs(None, p, "cpu", torch.float32).items()}
    est = make_estimator("score_function_baseline", {"baseline": "ema", "decay": 0.99})
    m = Harness(p, est, n_samples=1, theta=theta).run(20_000, seed=3)
    totals = [r for r in m.rows if r["param"] == "total"]
    var = np.array([r["variance"] for r in totals])
    se = np.array([r["variance_se"] for r in totals])
    ratio = var.std(ddof=1) / np.sqrt((se**2).mean())
    assert 0.85 < ratio < 1.15, ratio


def test_batches_are_long_next_to_the_state_memory():
    assert batch_size(20_000, 0) == math.ceil(20_000 / 1024)
    assert batch_size(20_000, 100) == 100  # decay 0.99: one 100-step memory (and lagged covariances)
    m = measure(make_problem("bernoulli_toy"), make_estimator("score_function_baseline", {"decay": 0.99}),
                n_samples=1, n_replicates=2_000)
    assert math.isnan(m.rows[-1]["variance_se"]) and "only 20 batches" in m.message()  # 50 needed with state


def test_the_bias_test_is_one_per_job_in_phi():
    """policy_mlp: theta has 732 coordinates but phi only 2; the test lives in phi and flags a
    bias of 8 standard errors along dE/dmu, the same verdict on every row."""
    p = make_problem("policy_mlp")
    est = make_estimator("score_function")
    null = measure(p, est, n_samples=10, n_replicates=20_000, seed=1)
    assert {r["bias_significant"] for r in null.rows} == {False}
    assert len({r["bias_p_value"] for r in null.rows}) == 1
    delta = 8 * math.sqrt(float(null.phi_variance[0, 0]) / 20_000)
    biased = measure(p, InjectedBias(est, "mu", 0, delta), n_samples=10, n_replicates=20_000, seed=1)
    assert {r["bias_significant"] for r in biased.rows} == {True}
    assert biased.rows[-1]["bias_p_value"] < 1e-3


@pytest.mark.parametrize("R,se,test", [(2, False, False), (MIN_REPLICATES_FOR_SE, True, False),
                                       (MIN_REPLICATES_FOR_BIAS_TEST, True, True)])
def test_floors_leave_columns_empty_with_a_message(R, se, test):
    m = measure(make_problem("gaussian_quadratic"), make_estimator("score_function"), n_samples=2, n_replicates=R)
    total = m.rows[-1]
    assert math.isfinite(total["variance"])
    assert math.isfinite(total["variance_se"]) == se and math.isfinite(total["bias_se"]) == se
    assert (total["bias_significant"] is not None) == test
    if not test:
        assert f"below {MIN_REPLICATES_FOR_BIAS_TEST}" in m.message()
    if not se:
        assert f"below {MIN_REPLICATES_FOR_SE}" in m.message()


def test_an_infinite_fourth_moment_gets_no_standard_error():
    p = make_problem("gaussian_exp", {"k": -0.2})  # 1 + 4k = 0.2 > 0, 1 + 8k = -0.6 <= 0
    m = measure(p, make_estimator("score_function"), n_samples=1, n_replicates=20_000, dtype=torch.float64)
    assert all(math.isnan(r["variance_se"]) for r in m.rows)
    assert "fourth moment is infinite" in m.message()
    with pytest.raises(ValueError, match="problem.k=-0.3 is not allowed"):
        make_problem("gaussian_exp", {"k": -0.3})  # 1 + 4k < 0: infinite variance, refused


def test_noise_is_drawn_in_the_jobs_dtype():
    eps = Sampler.seeded(0, "cpu").normal((100_000,), torch.zeros((), dtype=torch.float64))
    assert eps.dtype == torch.float64
    assert not torch.equal(eps, eps.float().double())  # not float32 numbers upcast
    u = Sampler.seeded(0, "cpu").uniform((100_000,), torch.zeros((), dtype=torch.float64))
    assert not torch.equal(u, u.float().double())


def test_rebar_is_finite_where_1_minus_p_plus_vp_rounds_to_one():
    """float32, p = 0.5, b = 1 and v = 1 - 2^-24: 1 - p + v p rounds to 1 and its logit would be
    infinite; the estimator takes the logs of the factors instead."""
    est = make_estimator("rebar")
    logits = torch.zeros(1, 1, requires_grad=True)
    dist = torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 1)
    u = torch.full((1, 1, 1), 0.9)  # b = 1
    v = torch.full((1, 1, 1), 1 - 2**-24)
    assert float(torch.tensor(1 - 0.5 + 0.5 * v.item(), dtype=torch.float32)) == 1.0
    loss = est.surrogate(dist, make_problem("bernoulli_toy").cost_function(), 1, PredrawnSampler([u, v]), None)
    (g,) = torch.autograd.grad(loss.sum(), logits)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("runs", [3, 10])
def test_the_interval_over_runs_covers_at_its_level(runs):
    """The ± printed over training runs (few of them) is a t interval: it covers the true mean 95 % of
    the time (checked over 20000 simulated sets of runs; 4 binomial standard errors), where the
    normal quantile would cover about 81 % with 3 runs."""
    from bench.results import t_interval

    sims = 20000
    x = np.random.default_rng(0).normal(size=(sims, runs))
    lo_hi = np.array([t_interval(row) for row in x])
    covered = np.mean((lo_hi[:, 0] <= 0) & (0 <= lo_hi[:, 1]))
    assert abs(covered - 0.95) < 4 * math.sqrt(0.95 * 0.05 / sims)
