"""Diagonal Gaussian test problems of Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 2020, Section 3: x ~ N(mu, sigma^2) in ``dim`` independent
dimensions, theta = (mu, sigma) with sigma the standard deviation itself, and a cost that is a sum
over dimensions of a one-dimensional function ``f(x; k)`` with a closed-form Gaussian expectation.
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D

from estimators.base import ConfigError, sum_last

from .base import Problem, check_number
from .registry import register_problem


class DiagonalNormal(D.Independent):
    """``Independent(Normal(loc, scale), 1)``, whose ``log_prob`` sums the last dimension with
    :func:`estimators.base.sum_last` (no reduction kernel when ``dim`` is 1)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__(D.Normal(loc, scale, validate_args=False), 1, validate_args=False)

    def log_prob(self, value):
        return sum_last(self.base_dist.log_prob(value))


class GaussianProblem(Problem):
    """Base for ``f(x) = sum_j f1(x_j; k)`` under ``x ~ N(mu, diag(sigma^2))``."""

    identity_encode = True
    default_k: float = 1.0

    def __init__(self, mu: float = 1.0, sigma: float = 1.0, k: float | None = None, dim: int = 1):
        self.mu = float(check_number("problem.mu", mu))
        self.sigma = float(check_number("problem.sigma", sigma, positive=True))
        self.k = float(check_number("problem.k", self.default_k if k is None else k))
        self.dim = check_number("problem.dim", dim, integer=True, minimum=1)

    def options(self):
        return {"mu": self.mu, "sigma": self.sigma, "k": self.k, "dim": self.dim}

    def init_params(self, device, dtype):
        return {
            "mu": torch.full((self.dim,), self.mu, device=device, dtype=dtype),
            "sigma": torch.full((self.dim,), self.sigma, device=device, dtype=dtype),
        }

    def distribution(self, phi):
        return DiagonalNormal(phi["mu"], phi["sigma"])

    def cost(self, x):
        return sum_last(self.f1(x))

    def expected_cost(self, dist):
        normal = dist.base_dist
        return sum_last(self.expected_f1(normal.loc, normal.scale))

    def f1(self, x: torch.Tensor) -> torch.Tensor:
        """The one-dimensional cost, elementwise."""
        raise NotImplementedError

    def expected_f1(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``E[f1(x)]`` for ``x ~ N(mu, sigma^2)``, elementwise, in closed form."""
        raise NotImplementedError


@register_problem
class GaussianQuadratic(GaussianProblem):
    """``f1(x) = (x - k)^2``; ``E f1 = (mu - k)^2 + sigma^2``."""

    name = "gaussian_quadratic"
    default_k = 3.0

    def f1(self, x):
        return (x - self.k) ** 2

    def expected_f1(self, mu, sigma):
        return (mu - self.k) ** 2 + sigma**2


@register_problem
class GaussianCosine(GaussianProblem):
    """``f1(x) = cos(k x)``; ``E f1 = cos(k mu) exp(-k^2 sigma^2 / 2)``."""

    name = "gaussian_cosine"
    default_k = 1.0

    def f1(self, x):
        return torch.cos(self.k * x)

    def expected_f1(self, mu, sigma):
        return torch.cos(self.k * mu) * torch.exp(-0.5 * (self.k * sigma) ** 2)


@register_problem
class GaussianExp(GaussianProblem):
    """``f1(x) = exp(-k x^2)``; ``E f1 = exp(-k mu^2 / (1 + 2 k sigma^2)) / sqrt(1 + 2 k sigma^2)``."""

    name = "gaussian_exp"
    default_k = 1.0

    def __init__(self, mu: float = 1.0, sigma: float = 1.0, k: float | None = None, dim: int = 1):
        super().__init__(mu, sigma, k, dim)
        # The score-function variance needs E[f^2 ...] finite: 1 + 4 k sigma^2 > 0.
        if not 1.0 + 4.0 * self.k * self.sigma**2 > 0:
            raise ConfigError("problem.k", self.k, f"with problem.sigma={self.sigma} needs 1 + 4 k sigma^2 > 0 (else the cost's moments diverge)")

    def f1(self, x):
        return torch.exp(-self.k * x**2)

    def expected_f1(self, mu, sigma):
        s = 1.0 + 2.0 * self.k * sigma**2
        return torch.exp(-self.k * mu**2 / s) / torch.sqrt(s)
