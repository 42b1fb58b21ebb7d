"""Unbiased estimators for Bernoulli variables: ARM, DisARM and REBAR.

Notation: ``alpha`` are the logits, ``p = sigmoid(alpha)``, ``u, v ~ U(0, 1)`` per bit.
"""

from __future__ import annotations

import torch

from .base import ConfigError, Estimator, base_distribution, linear_surrogate, mean_over_samples
from .registry import register
from .sampling import logit


def _logits_and_uniform(dist, n_samples: int, sampler) -> tuple[torch.Tensor, torch.Tensor]:
    """The Bernoulli logits (with their graph) and ``u ~ U(0, 1)`` of shape ``[n, *batch, *event]``."""
    alpha = base_distribution(dist).logits
    return alpha, sampler.uniform(torch.Size((n_samples,)) + dist.batch_shape + dist.event_shape, alpha)


def diff_shape(u: torch.Tensor, dist) -> tuple:
    """Shape that broadcasts a per-sample cost over the event dimensions of ``u``."""
    return tuple(u.shape[: u.dim() - len(dist.event_shape)]) + (1,) * len(dist.event_shape)


@register
class ARM(Estimator):
    r"""Augment-REINFORCE-merge (unbiased), for Bernoulli variables.

    .. math:: \hat g_\alpha = \frac1N\sum_i \Big[f\big(1[u_i > \sigma(-\alpha)]\big)
              - f\big(1[u_i < \sigma(\alpha)]\big)\Big]\,(u_i - \tfrac12)

    Two evaluations of f per sample. (Yin & Zhou, "ARM: Augment-REINFORCE-Merge Gradient for
    Stochastic Binary Networks", ICLR 2019, Theorem 1.)
    """

    name = "arm"
    families = frozenset({"bernoulli"})
    evals_per_sample = 2

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        alpha, u = _logits_and_uniform(dist, n_samples, sampler)
        with torch.no_grad():
            b1 = (u > torch.sigmoid(-alpha)).to(alpha.dtype)
            b2 = (u < torch.sigmoid(alpha)).to(alpha.dtype)
            diff = (cost(b1) - cost(b2)).reshape(diff_shape(u, dist))
            g = mean_over_samples(diff * (u - 0.5))
        return linear_surrogate([(g, alpha)])


@register
class DisARM(Estimator):
    r"""DisARM (unbiased), the antithetic ARM for Bernoulli variables.

    With :math:`b = 1[u < \sigma(\alpha)]` and :math:`\tilde b = 1[1 - u < \sigma(\alpha)]`:

    .. math:: \hat g_{\alpha_j} = \frac1N\sum_i \tfrac12\big(f(b_i) - f(\tilde b_i)\big)
              \,(-1)^{\tilde b_{ij}}\, 1[b_{ij} \ne \tilde b_{ij}]\, \sigma(|\alpha_j|)

    Two evaluations of f per sample. (Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient
    Estimator for Binary Latent Variables", NeurIPS 2020, Eq. 5 and Section 3.2.)
    """

    name = "disarm"
    families = frozenset({"bernoulli"})
    evals_per_sample = 2

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        alpha, u = _logits_and_uniform(dist, n_samples, sampler)
        with torch.no_grad():
            p = torch.sigmoid(alpha)
            b = (u < p).to(alpha.dtype)
            b_anti = (1 - u < p).to(alpha.dtype)
            diff = (cost(b) - cost(b_anti)).reshape(diff_shape(u, dist))
            sign = 1 - 2 * b_anti  # (-1)^{b~}
            weight = sign * (b != b_anti).to(alpha.dtype) * torch.sigmoid(alpha.abs())
            g = mean_over_samples(0.5 * diff * weight)
        return linear_surrogate([(g, alpha)])


@register
class REBAR(Estimator):
    r"""REBAR (unbiased for any fixed temperature and eta), for Bernoulli variables.

    With :math:`z = \alpha + \mathrm{logit}(u)`, :math:`b = 1[z > 0]`, the conditional sample
    :math:`\tilde z = \alpha + \mathrm{logit}(v')`, :math:`v' = b\,(1 - p + v p) + (1-b)\,v (1-p)`
    (so :math:`\tilde z \sim p(z \mid b)`, reparameterized with b fixed), and
    :math:`\sigma_\lambda(z) = \sigma(z / \lambda)`:

    .. math:: \hat g = \big[f(b) - \eta f(\sigma_\lambda(\tilde z))\big]\nabla\log p(b)
              + \eta \nabla f(\sigma_\lambda(z)) - \eta \nabla f(\sigma_\lambda(\tilde z))

    Three evaluations of f per sample. ``temperature`` is :math:`\lambda`, ``eta`` is :math:`\eta`;
    both are held fixed (the paper also tunes them by minimising the variance). (Tucker, Mnih,
    Maddison, Lawson & Sohl-Dickstein, "REBAR: Low-variance, unbiased gradient estimates for
    discrete latent variable models", NeurIPS 2017, Eq. 6.)
    """

    name = "rebar"
    families = frozenset({"bernoulli"})
    evals_per_sample = 3

    def __init__(self, temperature: float = 0.5, eta: float = 1.0):
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ConfigError("estimator.temperature", temperature, "must be a number > 0")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)):
            raise ConfigError("estimator.eta", eta, "must be a number")
        self.temperature, self.eta = float(temperature), float(eta)

    def options(self):
        return {"temperature": self.temperature, "eta": self.eta}

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        alpha, u = _logits_and_uniform(dist, n_samples, sampler)
        v = sampler.uniform(u.shape, alpha)
        p = torch.sigmoid(alpha)
        z = alpha + logit(u)
        b = (z > 0).to(alpha.dtype).detach()
        v_cond = b * (1 - p + v * p) + (1 - b) * v * (1 - p)
        z_cond = alpha + logit(v_cond)
        relaxed = cost(torch.sigmoid(z / self.temperature))
        relaxed_cond = cost(torch.sigmoid(z_cond / self.temperature))
        with torch.no_grad():
            learning_signal = cost(b) - self.eta * relaxed_cond
        per_sample = learning_signal * dist.log_prob(b) + self.eta * (relaxed - relaxed_cond)
        return mean_over_samples(per_sample)
