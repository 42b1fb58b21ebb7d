"""The problems from the literature: the Bayesian logistic regression's exact objective against
adaptive quadrature and its gradient against finite differences; the ReinMax polynomial against
enumeration."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from bench.exact_variance import enumerate_support
from bench.problems import make_problem
from tests.helpers import exact_and_finite_difference
from bench.problems.bayes_logreg import breast_cancer, expected_softplus


def test_breast_cancer_data_as_specified():
    x, y = breast_cancer()
    assert x.shape == (569, 31) and set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_allclose(x[:, :30].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(x[:, :30].std(0), 1, atol=1e-12)  # ddof = 0
    assert (x[:, 30] == 1).all()


@pytest.mark.parametrize("mu", [-20.0, -3.0, -0.5, 0.0, 0.1, 1.0, 3.0, 15.0])
@pytest.mark.parametrize("s", [0.01, 0.5, 1.0, 5.5, 30.0])
def test_expected_softplus_against_adaptive_quadrature(mu, s):
    f = lambda u: np.logaddexp(0, u) * stats.norm.pdf(u, mu, s)  # noqa: E731
    lo, hi = mu - 40 * s, mu + 40 * s
    q, _ = integrate.quad(f, lo, hi, points=[0.0] if lo < 0 < hi else None, epsabs=0, epsrel=1e-13, limit=1000)
    ours = float(expected_softplus(torch.tensor(mu, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)))
    assert ours == pytest.approx(q, rel=1e-8, abs=1e-15)


@pytest.mark.parametrize("opts", [{}, {"n_data": 50}])
def test_bayes_logreg_objective_against_adaptive_quadrature_per_point(opts):
    p = make_problem("bayes_logreg", opts)
    g = torch.Generator().manual_seed(0)
    m = 0.3 * torch.randn(p.dim, generator=g, dtype=torch.float64)
    rho = -1.0 + 0.5 * torch.randn(p.dim, generator=g, dtype=torch.float64)
    dist = p.distribution(p.encode({"mean": m, "log_scale": rho}))
    ours = float(p.expected_cost(dist))
    x, y = p.x.numpy(), p.y.numpy()
    mu = -(x @ m.numpy()) * y
    s = np.sqrt((x * x) @ np.exp(2 * rho.numpy()))
    total = sum(integrate.quad(lambda u, a=a, b=b: np.logaddexp(0, u) * stats.norm.pdf(u, a, b), a - 40 * b, a + 40 * b,
                               points=[0.0] if a - 40 * b < 0 < a + 40 * b else None, epsabs=0, epsrel=1e-12,
                               limit=500)[0] for a, b in zip(mu, s))
    assert ours == pytest.approx(total, rel=1e-8)


def test_bayes_logreg_gradient_against_finite_differences():
    p = make_problem("bayes_logreg", {"n_data": 60})
    theta = {"mean": 0.2 * torch.ones(1, p.dim, dtype=torch.float64), "log_scale": -0.5 * torch.ones(1, p.dim, dtype=torch.float64)}
    exact, fd = exact_and_finite_difference(p, theta)
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=1e-6)


def test_bayes_logreg_monte_carlo_matches_the_exact_objective():
    p = make_problem("bayes_logreg")
    dist = p.distribution(p.encode(p.init_params("cpu", torch.float64)))
    w = dist.sample((100_000,))
    f = p.cost(w)
    assert abs(float(f.mean()) - float(p.expected_cost(dist))) < 4 * float(f.std()) / 100_000**0.5


def test_coordinate_replaced_cost_is_the_cost_with_one_coordinate_replaced():
    p = make_problem("bayes_logreg", {"n_data": 40})
    g = torch.Generator().manual_seed(1)
    w, v = torch.randn(3, p.dim, generator=g, dtype=torch.float64), torch.randn(3, p.dim, generator=g, dtype=torch.float64)
    fast = p.coordinate_replaced_cost(w, v)
    for j in range(p.dim):
        slow = w.clone()
        slow[:, j] = v[:, j]
        torch.testing.assert_close(fast[:, j], p.cost(slow))


@pytest.mark.parametrize("power", [1.5, 2.0, 3.0])
def test_reinmax_polynomial_against_enumeration(power):
    p = make_problem("reinmax_polynomial", {"dim": 6, "p": power})
    logits = torch.linspace(-1, 1.5, 6, dtype=torch.float64).requires_grad_(True)
    dist = p.distribution({"logits": logits})
    outcomes = enumerate_support(dist)
    by_enumeration = (dist.log_prob(outcomes).exp() * p.cost(outcomes)).sum()
    closed = p.expected_cost(dist)
    torch.testing.assert_close(closed, by_enumeration)
    g1, = torch.autograd.grad(closed, logits, retain_graph=True)
    g2, = torch.autograd.grad(by_enumeration, logits)
    torch.testing.assert_close(g1, g2)
    assert p.optimum() == pytest.approx(0.45**power)
