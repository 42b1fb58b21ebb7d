"""The batched harness against naive per-replicate computation, and its statistics."""

import math

import pytest
import torch
from torch import distributions as D

from bench.geometry import replicate, with_runs
from bench.harness import Harness, measure_estimates as measure
from bench.presets import build
from bench.problems import make_problem
from bench.problems.base import Problem
from bench.statistics import GradientMoments, Projection
from estimators import Sampler, make_estimator
from estimators.score_function import ScoreFunctionBaseline, exponential_moving_average


def naive_estimates(problem, estimator_name, n, R, seed, dtype=torch.float64):
    """One backward() per replicate through torch.distributions and encode (no batching), with
    the noise the harness draws for a single chunk of R replicates."""
    theta0 = problem.init_params("cpu", dtype)
    with torch.no_grad():
        dist0 = problem.distribution(replicate(problem.encode(with_runs(None, problem, "cpu", dtype)), R))
    eps = Sampler.seeded(seed, "cpu").normal((n,) + dist0.batch_shape + dist0.event_shape,
                                             torch.zeros((), dtype=dtype))[:, :, 0]
    rows = []
    for r in range(R):
        theta = {k: v.clone().requires_grad_(True) for k, v in theta0.items()}
        phi = problem.encode(theta)
        dist = problem.distribution(phi)
        base = dist.base_dist if isinstance(dist, D.Independent) else dist
        if estimator_name == "reparameterization":
            x = base.loc + base.scale * eps[:, r]
            loss = problem.cost(x).mean()
        else:
            x = (base.loc + base.scale * eps[:, r]).detach()
            loss = (problem.cost(x) * dist.log_prob(x)).mean()
        grads = torch.autograd.grad(loss, list(theta.values()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("pname", ["gaussian_cosine", "policy_mlp"])
@pytest.mark.parametrize("ename", ["score_function", "reparameterization"])
def test_batched_equals_naive_loop(pname, ename):
    problem = make_problem(pname, {"dim": 3} if pname.startswith("gaussian") else {})
    n, R = 3, 40
    m = measure(problem, make_estimator(ename), n_samples=n, n_replicates=R, seed=7,
                dtype=torch.float64, keep_estimates=True)
    expected = naive_estimates(problem, ename, n, R, seed=7)
    torch.testing.assert_close(m.estimates[0], expected, rtol=1e-10, atol=1e-12)
    # Variance is the trace of the sample covariance of exactly these estimates.
    total = m.rows[-1]
    assert total["variance"] == pytest.approx(float(expected.var(0).sum()), rel=1e-9)


def test_rows_partition_theta():
    m = measure(make_problem("policy_mlp"), make_estimator("score_function"), n_samples=2, n_replicates=500,
                keep_estimates=True, dtype=torch.float64)
    est = m.estimates[0]
    names = [r["param"] for r in m.rows]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias", "total"]
    sizes = [20, 20, 600, 30, 60, 2]
    assert [r["dim"] for r in m.rows] == sizes + [732]
    start = 0
    for row, size in zip(m.rows, sizes):
        block = est[:, start:start + size]
        assert row["variance"] == pytest.approx(float(block.var(0).sum()), rel=1e-8)
        start += size
    assert sum(r["variance"] for r in m.rows[:-1]) == pytest.approx(m.rows[-1]["variance"], rel=1e-10)


class _ViaJacobian(Problem):
    """A Gaussian problem routed through the general Jacobian path (encode = identity, not flagged)."""

    identity_encode = False
    name = "via_jacobian"

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def init_params(self, device, dtype):
        return self.inner.init_params(device, dtype)

    def encode(self, theta):
        return {k: v * 1.0 for k, v in theta.items()}

    def distribution(self, phi):
        return self.inner.distribution(phi)

    def cost(self, x):
        return self.inner.cost(x)

    def expected_cost(self, dist):
        return self.inner.expected_cost(dist)


@pytest.mark.parametrize("dim", [1, 4, 12])  # 12: more than 16 features on both paths
@pytest.mark.parametrize("chunk_elements", [2**19, 1000])
def test_identity_and_jacobian_paths_agree(chunk_elements, dim):
    inner = make_problem("gaussian_exp", {"dim": dim})
    kw = dict(n_samples=2, n_replicates=20_000, seed=3, dtype=torch.float64, chunk_elements=chunk_elements)
    a = measure(inner, make_estimator("score_function"), **kw)
    b = measure(_ViaJacobian(inner), make_estimator("score_function"), **kw)
    for ra, rb in zip(a.rows, b.rows):
        for key in ("variance", "bias", "mse", "true_grad_norm", "bias_se", "variance_se", "bias_p_value"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-9), key


def test_many_chunks_match_one_chunk_statistically():
    p = make_problem("gaussian_quadratic")
    one = measure(p, make_estimator("score_function"), n_samples=4, n_replicates=50_000, seed=1).rows[-1]
    many = measure(p, make_estimator("score_function"), n_samples=4, n_replicates=50_000, seed=2,
                   chunk_elements=4096).rows[-1]
    assert Harness(p, make_estimator("score_function"), n_samples=4, chunk_elements=4096).chunk == 1024
    se = math.hypot(one["variance_se"], many["variance_se"])
    assert abs(one["variance"] - many["variance"]) < 4 * se


def test_variance_se_matches_exact_standard_error():
    """Pathwise gradient of the quadratic's mean is 2(mu-k) + 2 sigma eps: Gaussian with variance
    4 sigma^2, so the sample variance has standard error sqrt(2/(R-1)) * 4 sigma^2. The harness's
    delta-method estimate of it has relative standard error sqrt((m8 - m4^2)/R) / (2 Var q) =
    sqrt(96/R)/4 for Gaussian estimates; the test allows four of those."""
    R = 100_000
    sigma = 1.5
    m = measure(make_problem("gaussian_quadratic", {"sigma": sigma}), make_estimator("reparameterization"),
                n_samples=1, n_replicates=R, seed=11, dtype=torch.float64)
    row = m.rows[0]
    exact_se = math.sqrt(2 / (R - 1)) * 4 * sigma**2
    assert abs(row["variance_se"] / exact_se - 1) < 4 * math.sqrt(96 / R) / 4


def test_exponential_moving_average_matches_loop():
    g = torch.Generator().manual_seed(0)
    for decay, length in [(0.9, 13_000), (0.5, 7), (0.0, 10), (0.999, 3000)]:
        u = torch.randn(length, generator=g, dtype=torch.float64)
        y, end = exponential_moving_average(u, decay, start=0.3)
        expected, state = [], 0.3
        for value in u.tolist():
            expected.append(state)
            state = decay * state + (1 - decay) * value
        torch.testing.assert_close(y, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-12)
        assert end == pytest.approx(state, rel=1e-10)


def test_ema_baseline_uses_only_earlier_costs():
    """Estimates across several chunks equal (f - b_r) * score with b_r the bias-corrected EMA of
    the mean costs of replicates < r only (replicates are consecutive steps; b_0 = 0)."""
    p = make_problem("gaussian_quadratic")
    n, R, decay = 2, 30, 0.8
    m = measure(p, ScoreFunctionBaseline(baseline="ema", decay=decay), n_samples=n, n_replicates=R, seed=3,
                dtype=torch.float64, chunk_elements=10, keep_estimates=True)  # chunks of 5 replicates
    gen = torch.Generator().manual_seed(3)
    eps = torch.cat([torch.randn((n, c, 1, 1), generator=gen, dtype=torch.float64) for c in (5,) * 6], dim=1)
    mu, sigma = p.mu, p.sigma
    x = mu + sigma * eps[..., 0, 0]  # [n, R]
    f = p.f1(x)
    num = wt = 0.0
    expected = []
    for r in range(R):
        b = num / wt if wt > 0 else 0.0
        g_mu = ((f[:, r] - b) * (x[:, r] - mu) / sigma**2).mean()
        g_sigma = ((f[:, r] - b) * ((x[:, r] - mu) ** 2 / sigma**3 - 1 / sigma)).mean()
        expected.append(torch.stack([g_mu, g_sigma]))
        num = decay * num + (1 - decay) * float(f[:, r].mean())
        wt = decay * wt + (1 - decay)
    torch.testing.assert_close(m.estimates[0], torch.stack(expected), rtol=1e-9, atol=1e-10)


class _LeakyEMA(ScoreFunctionBaseline):
    """A deliberately wrong baseline that includes the current replicate's cost (the known bug)."""

    name = "leaky_ema"

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        x = sampler.sample(dist, n_samples)
        with torch.no_grad():
            f = cost(x)
            y, _ = exponential_moving_average(f.mean(0), self.decay, 0.0)
            b = self.decay * y + (1 - self.decay) * f.mean(0)  # includes the current cost
        return ((f - b) * dist.log_prob(x)).mean(0)


class _LeakyLOO(ScoreFunctionBaseline):
    name = "leaky_loo"

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        x = sampler.sample(dist, n_samples)
        with torch.no_grad():
            f = cost(x)
            b = f.mean(0, keepdim=True)  # mean over all samples, the current one included
        return ((f - b) * dist.log_prob(x)).mean(0)


@pytest.mark.parametrize("leaky,correct", [(_LeakyEMA(baseline="ema", decay=0.9), "ema"),
                                           (_LeakyLOO(baseline="loo"), "loo")])
def test_a_baseline_using_the_current_cost_is_flagged_biased(leaky, correct):
    p = make_problem("gaussian_quadratic")
    kw = dict(n_samples=2, n_replicates=100_000, seed=21)
    bad = measure(p, leaky, **kw).rows[-1]
    good = measure(p, ScoreFunctionBaseline(baseline=correct), **kw).rows[-1]
    assert bad["bias_significant"] is True and bad["bias"] > 4 * bad["bias_se"]
    assert good["bias_significant"] is False


def test_score_function_and_reparameterization_share_samples():
    p = make_problem("gaussian_cosine", {"dim": 2})
    phi = replicate(p.encode(p.init_params("cpu", torch.float32)), 5)
    x1 = Sampler.seeded(9, "cpu").sample(p.distribution(phi), 3)
    x2 = Sampler.seeded(9, "cpu").rsample(p.distribution(phi), 3)
    assert not x1.requires_grad and x2.requires_grad
    torch.testing.assert_close(x1, x2.detach())


def test_same_seed_same_statistics_and_different_seed_differs():
    p = make_problem("policy_mlp")
    e = make_estimator("score_function_baseline")
    a = measure(p, e, n_samples=3, n_replicates=20_000, seed=4).rows
    b = measure(p, e, n_samples=3, n_replicates=20_000, seed=4).rows
    c = measure(p, e, n_samples=3, n_replicates=20_000, seed=5).rows
    assert a == b
    assert a[-1]["variance"] != c[-1]["variance"]


class _SometimesInfinite(Problem):
    """f is infinite when x > 3: E f is infinite, so the problem has no exact gradient."""

    name = "sometimes_infinite"
    identity_encode = True
    has_exact = False

    def init_params(self, device, dtype):
        return {"mu": torch.zeros(1, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Independent(D.Normal(phi["mu"], torch.ones_like(phi["mu"])), 1)

    def cost(self, x):
        x = x.sum(-1)
        return torch.where(x > 3.0, torch.full_like(x, float("inf")), x)


def test_nonfinite_estimates_are_counted_not_averaged():
    m = measure(_SometimesInfinite(), make_estimator("score_function"), n_samples=1, n_replicates=100_000, seed=0)
    assert m.status() == "nonfinite"
    # P(x > 3) = 0.135 %: about 135 of 100000
    assert 80 < m.n_nonfinite[0] < 200
    assert "non-finite" in m.message()
    assert all(math.isfinite(r["variance"]) for r in m.rows)
    # no exact gradient: the bias columns are empty rather than invented
    assert all(math.isnan(r["bias"]) and r["bias_significant"] is None for r in m.rows)


def test_moments_need_two_replicates():
    proj = Projection({"a": 2}, None)
    mom = GradientMoments(proj, 1, 1, "cpu")
    mom.update(torch.ones(1, 2, 1))
    rows, messages = mom.result(None, dtype=torch.float32)[0]
    assert math.isnan(rows[0]["variance"]) and "fewer than 2" in messages[0]


def test_a_chunk_counts_every_batch_entry_and_its_phi_estimates():
    """The digits VAE's estimate samples codes for each of its images and the sequence policy's a
    completion for each prompt: a chunk's sampled values count all of them; and the phi-space
    estimates (the sequence policy's 400-entry logit table per replicate) are bounded too."""
    from bench.harness import chunk_replicates

    assert chunk_replicates(2**19, 1, sampled=4, n_phi=2) == 2**17
    assert chunk_replicates(2**19, 2, sampled=4, n_phi=2) == 2**16  # over all runs
    assert chunk_replicates(2**19, 1, sampled=80, n_phi=400) == 2**20 // 400  # the phi bound binds
    assert chunk_replicates(100, 1, sampled=1000, n_phi=1) == 1
    vae = make_problem("digits_vae", {"variables": 12, "n_data": 64})
    h = Harness(vae, make_estimator("score_function"), n_samples=2)
    assert h.chunk == 2**19 // (2 * 12 * 64)  # 64 images of 12 bits per sample
    seq = make_problem("sequence_policy")  # 4 prompts, 5 tokens of 4: 80 noise values a sample
    h = Harness(seq, build("estimator", "rloo"), n_samples=4)
    assert h.projection.n_phi == 4 * 5 * 5 * 4 and h.chunk == 2**20 // 400

