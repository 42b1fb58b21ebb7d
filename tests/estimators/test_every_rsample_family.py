"""The pathwise estimator on every distribution with rsample (torch's own, seeded from the job's
stream where the family has no transform of the job's noise), a constant cost's estimate of 0, and
the estimates themselves from the library."""

import math

import pytest
import torch
from torch import distributions as D

import bench

N = 20_000


def _check(grad_samples: torch.Tensor, exact: torch.Tensor):
    mean, se = grad_samples.mean(0), grad_samples.std(0) / math.sqrt(len(grad_samples))
    assert ((mean - exact).abs() <= 4 * se + 1e-12).all(), (mean, exact, se)


@pytest.mark.parametrize("family", ["multivariate_normal", "laplace", "gamma", "lognormal"])
def test_the_pathwise_estimator_is_unbiased_on_every_rsample_family(family):
    """d/dparam of E[x] or E[x^2], in closed form, against 20,000 one-sample estimates."""
    torch.manual_seed(0)
    est = bench.make_estimator("reparameterization")
    grads = []
    for _ in range(200):
        p = torch.tensor([0.7, 1.3], dtype=torch.float64, requires_grad=True)
        if family == "multivariate_normal":
            dist, cost, exact = D.MultivariateNormal(p, torch.eye(2, dtype=torch.float64)), lambda x: (x**2).sum(-1), 2 * p
        elif family == "laplace":
            dist, cost, exact = D.Laplace(p, 1.0), lambda x: x**2, 2 * p  # E x^2 = mu^2 + 2 b^2
        elif family == "gamma":
            dist, cost, exact = D.Gamma(p, 1.0), lambda x: x**2, 1 + 2 * p  # E x^2 = a + a^2 (rate 1)
        else:
            dist, cost, exact = D.LogNormal(p, 0.5), lambda x: x, torch.exp(p + 0.125)  # E x = e^(mu + s^2/2)
        loss = est(dist, cost, n_samples=N // 200)
        (g,) = torch.autograd.grad(loss.sum(), p)
        grads.append(g)
    _check(torch.stack(grads), exact.detach())


def test_a_constant_cost_gives_an_estimate_of_zero():
    x = torch.zeros(3, requires_grad=True)
    loss = bench.make_estimator("reparameterization")(D.Normal(x, 1.0), lambda a: torch.zeros_like(a), n_samples=4)
    (g,) = torch.autograd.grad(loss.sum(), x)
    assert torch.equal(g, torch.zeros(3))
    df = bench.measure({"name": "gaussian_cosine", "k": 0.0}, "reparameterization", n_samples=2, n_replicates=2000,
                       timing=False)
    total = df[df["param"] == "total"].iloc[0]
    assert total["status"] == "ok" and total["variance"] == 0 and total["bias"] == 0


def test_the_estimates_themselves_are_public_and_make_the_measured_variance():
    kw = dict(n_samples=10, n_replicates=5000, seed=3)
    est = bench.estimates("gaussian_quadratic", "score_function", **kw)
    assert list(est.columns) == ["mu[0]", "sigma[0]"] and len(est) == 5000
    total = bench.measure("gaussian_quadratic", "score_function", timing=False, **kw).query("param == 'total'").iloc[0]
    assert est.var(ddof=1).sum() == pytest.approx(total["variance"], rel=1e-6)
