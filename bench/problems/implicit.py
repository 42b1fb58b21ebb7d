r"""Gamma, Beta and Dirichlet problems: closed-form expectations of powers, so that the pathwise
estimator through torch's ``rsample`` (implicit reparameterisation: Figurnov, Mohamed & Mnih,
"Implicit Reparameterization Gradients", NeurIPS 2018; Jankowiak & Obermeyer, "Pathwise Derivatives
Beyond the Reparameterization Trick", ICML 2018) is measured against the exact gradient, and its
bias is torch's own approximation error of ``dx/dalpha`` (the papers bound it at about 5e-4
relative for Gamma, 1e-3 for Beta and Dirichlet).

* ``gamma_power``: ``x_j ~ Gamma(alpha, beta)``, ``f = sum_j x_j^k``,
  ``E f = dim Gamma(alpha + k) / (Gamma(alpha) beta^k)``;
* ``beta_power``: ``x_j ~ Beta(a, b)``, ``E x^k = Gamma(a + k) Gamma(a + b) / (Gamma(a) Gamma(a + b + k))``;
* ``dirichlet_power``: ``x ~ Dirichlet(alpha)``, ``f = sum_j w_j x_j^k`` with ``w_j = j + 1``
  (so that ``k = 1`` is not a constant), each ``x_j`` marginally ``Beta(alpha_j, alpha_0 - alpha_j)``.

theta is phi (the distribution's parameters), each a free positive tensor; a run that leaves the
positive domain stops (``in_domain``). Exact values by ``lgamma``, differentiable by autograd
(tested against finite differences and Monte Carlo). ``tests/problems/test_implicit.py`` also checks
torch's per-sample ``dx/dalpha`` against the implicit-function theorem, ``-dF/dalpha / p(x)``, with
``F`` scipy's regularised incomplete gamma and beta functions.
"""

from __future__ import annotations

import torch
from torch import distributions as D

from estimators.options import ConfigError, integer, number, numbers

from .base import Problem
from .registry import register_problem


def _log_moment(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """``log E x^k`` for ``x ~ Beta(a, b)``."""
    return torch.lgamma(a + k) + torch.lgamma(a + b) - torch.lgamma(a) - torch.lgamma(a + b + k)


class _Positive(Problem):
    identity_encode = True

    def in_domain(self, theta, n_lead=1):
        ok = torch.ones(next(iter(theta.values())).shape[:n_lead], dtype=torch.bool,
                        device=next(iter(theta.values())).device)
        for v in theta.values():
            ok &= (v.reshape(*v.shape[:n_lead], -1) > 0).all(-1) & torch.isfinite(v.reshape(*v.shape[:n_lead], -1)).all(-1)
        return ok


@register_problem
class GammaPower(_Positive):
    name = "gamma_power"
    summary = "x ~ Gamma(α, β) in `dim` coordinates, f = Σ x^k (implicit reparameterisation in torch's rsample)"
    options_spec = {"alpha": number(0.5, positive=True, doc="the concentration"),
                    "beta": number(1.0, positive=True, doc="the rate"),
                    "k": number(2.0, positive=True, doc="the power"), "dim": integer(1, minimum=1)}

    def init_params(self, device, dtype):
        return {"concentration": torch.full((self.dim,), self.alpha, device=device, dtype=dtype),
                "rate": torch.full((self.dim,), self.beta, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Independent(D.Gamma(phi["concentration"], phi["rate"], validate_args=False), 1, validate_args=False)

    def cost(self, x):
        return (x**self.k).sum(-1)

    def expected_cost(self, dist):
        a, b = dist.base_dist.concentration, dist.base_dist.rate
        return torch.exp(torch.lgamma(a + self.k) - torch.lgamma(a) - self.k * torch.log(b)).sum(-1)


@register_problem
class BetaPower(_Positive):
    name = "beta_power"
    summary = "x ~ Beta(a, b) in `dim` coordinates, f = Σ x^k (implicit reparameterisation in torch's rsample)"
    options_spec = {"a": number(0.5, positive=True), "b": number(2.0, positive=True),
                    "k": number(2.0, positive=True, doc="the power"), "dim": integer(1, minimum=1)}

    def init_params(self, device, dtype):
        return {"concentration1": torch.full((self.dim,), self.a, device=device, dtype=dtype),
                "concentration0": torch.full((self.dim,), self.b, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Independent(D.Beta(phi["concentration1"], phi["concentration0"], validate_args=False), 1,
                             validate_args=False)

    def cost(self, x):
        return (x**self.k).sum(-1)

    def expected_cost(self, dist):
        base = dist.base_dist
        return torch.exp(_log_moment(base.concentration1, base.concentration0, self.k)).sum(-1)


@register_problem
class DirichletPower(_Positive):
    name = "dirichlet_power"
    summary = "x ~ Dirichlet(α), f = Σ_j (j+1) x_j^k (implicit reparameterisation in torch's rsample)"
    options_spec = {"alpha": numbers((0.5, 1.0, 2.0), min_len=2, doc="the concentrations"),
                    "k": number(2.0, positive=True, doc="the power")}

    def setup(self):
        if not all(a > 0 for a in self.alpha):
            raise ConfigError("problem.alpha", list(self.alpha), "every concentration must be > 0")

    def init_params(self, device, dtype):
        return {"concentration": torch.tensor(self.alpha, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Dirichlet(phi["concentration"], validate_args=False)

    def _weights(self, like):
        return torch.arange(1, like.shape[-1] + 1, device=like.device, dtype=like.dtype)

    def cost(self, x):
        return (self._weights(x) * x**self.k).sum(-1)

    def expected_cost(self, dist):
        a = dist.concentration
        total = a.sum(-1, keepdim=True)
        return (self._weights(a) * torch.exp(_log_moment(a, total - a, self.k))).sum(-1)
