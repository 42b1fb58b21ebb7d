"""Exact gradients (autograd of the closed-form or enumerated objective) against finite differences,
for every problem preset (a new problem is covered with no line here) and some other settings; and
the closed-form objectives against quadrature."""

import pytest
import torch

from bench.exact_variance import normal_rule
from bench.presets import build, preset_names
from bench.problems import make_problem
from tests.helpers import exact_and_finite_difference

OTHER_SETTINGS = [
    ("gaussian_quadratic", {"mu": -0.4, "sigma": 2.5, "k": 0.5, "dim": 3}),
    ("gaussian_cosine", {"mu": 0.3, "sigma": 0.7, "k": 2.0, "dim": 2}),
    ("gaussian_exp", {"mu": -1.5, "sigma": 0.4, "k": 3.0, "dim": 2}),
    ("policy_mlp", {"x": -0.5, "y": 1.0, "init_seed": 3}),
]
CASES = [(name, None) for name in preset_names("problem") if build("problem", name).has_exact] + OTHER_SETTINGS


@pytest.mark.parametrize("name,opts", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_exact_gradient_matches_finite_differences(name, opts):
    problem = build("problem", name) if opts is None else make_problem(name, opts)
    theta = {k: v.unsqueeze(0) for k, v in problem.init_params("cpu", torch.float64).items()}
    exact, fd = exact_and_finite_difference(problem, theta)
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["gaussian_quadratic", "gaussian_cosine", "gaussian_exp"])
@pytest.mark.parametrize("k,sigma", [(2.0, 1.7), (20.0, 2.0), (0.5, 0.3), (-0.1, 1.0)])
def test_closed_form_objective_matches_quadrature(name, k, sigma):
    p = make_problem(name, {"mu": 0.2, "sigma": sigma, "k": k})
    eps, w = normal_rule()
    by_quadrature = float((w * p.f1(p.mu + p.sigma * eps)).sum())
    closed = float(p.expected_f1(torch.tensor(p.mu, dtype=torch.float64), torch.tensor(p.sigma, dtype=torch.float64)))
    assert closed == pytest.approx(by_quadrature, rel=1e-12, abs=1e-14)


def test_policy_exact_objective_matches_monte_carlo():
    """E[-(y-a)^2] = -((y-mu)^2 + std^2): check against a large sample."""
    p = make_problem("policy_mlp")
    phi = p.encode(p.init_params("cpu", torch.float64))
    a = torch.distributions.Normal(phi["mu"], phi["std"]).sample((2_000_000,))
    f = p.cost(a)
    assert abs(float(f.mean() - p.exact_objective(phi))) < 4 * float(f.std()) / 2_000_000**0.5
