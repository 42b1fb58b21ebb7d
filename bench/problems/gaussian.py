"""Diagonal Gaussian test problems of Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 2020, Section 3: x ~ N(mu, sigma^2) in ``dim`` independent
dimensions, theta = (mu, sigma) with sigma the standard deviation itself, and a cost that is a sum
over dimensions of a one-dimensional function ``f(x; k)`` with a closed-form Gaussian expectation.
"""

from __future__ import annotations

import torch
from torch import distributions as D

from estimators.base import sum_last
from estimators.options import ConfigError, integer, number

from .base import Problem
from .registry import register_problem


class DiagonalNormal(D.Independent):
    """``Independent(Normal(loc, scale), 1)``, whose ``log_prob`` sums the last dimension with
    :func:`estimators.base.sum_last` (no reduction kernel when ``dim`` is 1)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__(D.Normal(loc, scale, validate_args=False), 1, validate_args=False)

    def log_prob(self, value):
        return sum_last(self.base_dist.log_prob(value))

    def expand(self, batch_shape, _instance=None):
        base = self.base_dist.expand(torch.Size(batch_shape) + self.event_shape)
        return DiagonalNormal(base.loc, base.scale)


def gaussian_options(default_k: float) -> dict:
    return {"mu": number(1.0), "sigma": number(1.0, positive=True, doc="the standard deviation"),
            "k": number(default_k), "dim": integer(1, minimum=1)}


class GaussianProblem(Problem):
    """Base for ``f(x) = sum_j f1(x_j; k)`` under ``x ~ N(mu, diag(sigma^2))``."""

    identity_encode = True

    def init_params(self, device, dtype):
        return {
            "mu": torch.full((self.dim,), self.mu, device=device, dtype=dtype),
            "sigma": torch.full((self.dim,), self.sigma, device=device, dtype=dtype),
        }

    def distribution(self, phi):
        return DiagonalNormal(phi["mu"], phi["sigma"])

    def cost(self, x):
        return sum_last(self.f1(x))

    @property
    def elementwise_cost(self):
        return self.f1

    def expected_cost(self, dist):
        normal = dist.base_dist
        return sum_last(self.expected_f1(normal.loc, normal.scale))

    def in_domain(self, theta, n_lead=1):
        sigma = theta["sigma"].reshape(*theta["sigma"].shape[:n_lead], -1)
        return super().in_domain(theta, n_lead) & (sigma > 0).all(-1)

    def f1(self, x: torch.Tensor) -> torch.Tensor:
        """The one-dimensional cost, elementwise."""
        raise NotImplementedError

    def expected_f1(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``E[f1(x)]`` for ``x ~ N(mu, sigma^2)``, elementwise, in closed form."""
        raise NotImplementedError


@register_problem
class GaussianQuadratic(GaussianProblem):
    """``f1(x) = (x - k)^2``; ``E f1 = (mu - k)^2 + sigma^2`` (infimum 0: mu = k, sigma -> 0)."""

    name = "gaussian_quadratic"
    summary = "x ~ N(mu, sigma²) in `dim` dims, f = Σ (x-k)² (Mohamed et al. 2020, Sec. 3)"
    options_spec = gaussian_options(3.0)

    def f1(self, x):
        return (x - self.k) ** 2

    def expected_f1(self, mu, sigma):
        return (mu - self.k) ** 2 + sigma**2

    def optimum(self):
        return 0.0


@register_problem
class GaussianCosine(GaussianProblem):
    """``f1(x) = cos(k x)``; ``E f1 = cos(k mu) exp(-k^2 sigma^2 / 2)`` (infimum -dim when k != 0)."""

    name = "gaussian_cosine"
    summary = "x ~ N(mu, sigma²) in `dim` dims, f = Σ cos(k x) (Mohamed et al. 2020, Sec. 3)"
    options_spec = gaussian_options(1.0)

    def f1(self, x):
        return torch.cos(self.k * x)

    def expected_f1(self, mu, sigma):
        return torch.cos(self.k * mu) * torch.exp(-0.5 * (self.k * sigma) ** 2)

    def optimum(self):
        return -float(self.dim) if self.k != 0 else float(self.dim)


@register_problem
class GaussianExp(GaussianProblem):
    """``f1(x) = exp(-k x^2)``; ``E f1 = exp(-k mu^2 / (1 + 2 k sigma^2)) / sqrt(1 + 2 k sigma^2)``.

    Moments: ``E[f^m s^2]`` is finite iff ``1 + 2 m k sigma^2 > 0``, so the estimators' variance
    needs ``1 + 4 k sigma^2 > 0`` (refused otherwise) and its standard error, a fourth moment,
    ``1 + 8 k sigma^2 > 0`` (reported as NaN with a message otherwise)."""

    name = "gaussian_exp"
    summary = "x ~ N(mu, sigma²) in `dim` dims, f = Σ exp(-k x²) (Mohamed et al. 2020, Sec. 3)"
    options_spec = gaussian_options(1.0)

    def setup(self):
        if not 1.0 + 4.0 * self.k * self.sigma**2 > 0:
            raise ConfigError("problem.k", self.k, f"with problem.sigma={self.sigma} needs 1 + 4 k sigma^2 > 0 "
                                                   "(else the estimators' variance is infinite)")

    def moment_warning(self):
        if not 1.0 + 8.0 * self.k * self.sigma**2 > 0:
            return (f"1 + 8 k sigma^2 = {1 + 8 * self.k * self.sigma**2:.3g} <= 0: the estimates' fourth moment is "
                    "infinite, so no standard error of the variance can hold (variance_se left empty)")
        return None

    def f1(self, x):
        return torch.exp(-self.k * x**2)

    def expected_f1(self, mu, sigma):
        s = 1.0 + 2.0 * self.k * sigma**2
        return torch.exp(-self.k * mu**2 / s) / torch.sqrt(s)

    def optimum(self):
        # k > 0: E f1 -> 0 as |mu| -> infinity; k <= 0: E f1 >= 1, reached at mu = 0, sigma -> 0.
        return 0.0 if self.k > 0 else float(self.dim)

