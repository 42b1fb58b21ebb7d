"""Unbiased estimators for Bernoulli variables: ARM, DisARM and REBAR.

Notation: ``alpha`` are the logits, ``p = sigmoid(alpha)``, ``u, v ~ U(0, 1)`` per bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Estimator, linear_surrogate, mean_over_samples
from .families import base_distribution
from .options import number
from .registry import register


def _logits_and_uniform(dist, n_samples: int, sampler) -> tuple[torch.Tensor, torch.Tensor]:
    """The Bernoulli logits (with their graph) and ``u ~ U(0, 1)`` of shape ``[n, *batch, *event]``."""
    alpha = base_distribution(dist).logits
    return alpha, sampler.uniform(torch.Size((n_samples,)) + dist.batch_shape + dist.event_shape, alpha)


def diff_shape(u: torch.Tensor, dist) -> tuple:
    """Shape that broadcasts a per-sample cost over the event dimensions of ``u``."""
    return tuple(u.shape[: u.dim() - len(dist.event_shape)]) + (1,) * len(dist.event_shape)


class _TwoPoint(Estimator):
    """A Bernoulli estimator from two coupled bit vectors per uniform ``u``: ``(1/N) sum_i
    (f(first_i) - f(second_i)) weight_i``, formed in closed form and given to the logits by a
    linear surrogate. Subclasses define :meth:`pair`."""

    families = frozenset({"bernoulli"})
    evals_per_sample = 2

    def pair(self, alpha: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(first, second, weight)`` for logits ``alpha`` and uniforms ``u``."""
        raise NotImplementedError

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        alpha, u = _logits_and_uniform(dist, n_samples, sampler)
        with torch.no_grad():
            first, second, weight = self.pair(alpha, u)
            diff = (cost(first) - cost(second)).reshape(diff_shape(u, dist))
            g = mean_over_samples(diff * weight)
        return linear_surrogate([(g, alpha)], len(dist.batch_shape))


@register
class ARM(_TwoPoint):
    r"""Augment-REINFORCE-merge (unbiased), for Bernoulli variables.

    .. math:: \hat g_\alpha = \frac1N\sum_i \Big[f\big(1[u_i > \sigma(-\alpha)]\big)
              - f\big(1[u_i < \sigma(\alpha)]\big)\Big]\,(u_i - \tfrac12)

    Two evaluations of f per sample. (Yin & Zhou, "ARM: Augment-REINFORCE-Merge Gradient for
    Stochastic Binary Networks", ICLR 2019, Theorem 1.)
    """

    name = "arm"
    summary = "`(f(1[u>σ(-α)]) - f(1[u<σ(α)]))(u - 1/2)` (Yin & Zhou 2019)"

    def pair(self, alpha, u):
        return (u > torch.sigmoid(-alpha)).to(alpha.dtype), (u < torch.sigmoid(alpha)).to(alpha.dtype), u - 0.5


@register
class DisARM(_TwoPoint):
    r"""DisARM (unbiased), the antithetic ARM for Bernoulli variables.

    With :math:`b = 1[u < \sigma(\alpha)]` and :math:`\tilde b = 1[1 - u < \sigma(\alpha)]`:

    .. math:: \hat g_{\alpha_j} = \frac1N\sum_i \tfrac12\big(f(b_i) - f(\tilde b_i)\big)
              \,(-1)^{\tilde b_{ij}}\, 1[b_{ij} \ne \tilde b_{ij}]\, \sigma(|\alpha_j|)

    Two evaluations of f per sample. (Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient
    Estimator for Binary Latent Variables", NeurIPS 2020, Eq. 5 and Section 3.2.)
    """

    name = "disarm"
    summary = "antithetic ARM: `½(f(b) - f(b̃))(-1)^b̃ 1[b≠b̃] σ(|α|)` (Dong, Mnih & Tucker 2020)"

    def pair(self, alpha, u):
        p = torch.sigmoid(alpha)
        b, b_anti = (u < p).to(alpha.dtype), (1 - u < p).to(alpha.dtype)
        sign = 1 - 2 * b_anti  # (-1)^{b~}
        return b, b_anti, 0.5 * sign * (b != b_anti).to(alpha.dtype) * torch.sigmoid(alpha.abs())


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

    Numerics: in float32, ``1 - p + v p`` rounds to 1 for some ``v`` and its logit is infinite
    (1-3 estimates in 3e6). The paper's code clamps the argument of each log to ``[1e-8, 1]``;
    here the logs are taken of the factors instead, which needs no clamp and is exact:
    ``log(1 - v') = log p + log(1 - v)`` for ``b = 1`` and ``log v' = log v + log(1 - p)`` for
    ``b = 0``, with ``log p = logsigmoid(alpha)``. ``v < 1`` always (``torch.rand`` draws from
    ``[0, 1)``, and 0 is moved to the smallest positive number), so every term is finite.
    """

    name = "rebar"
    summary = "`[f(b) - η f(σ_λ(z̃))]∇log p(b) + η∇f(σ_λ(z)) - η∇f(σ_λ(z̃))` (Tucker et al. 2017); unbiased for any fixed λ, η"
    families = frozenset({"bernoulli"})
    evals_per_sample = 3
    options_spec = {"temperature": number(0.5, positive=True, doc="lambda of the relaxation"),
                    "eta": number(1.0, doc="scale of the control variate")}

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        alpha, u = _logits_and_uniform(dist, n_samples, sampler)
        v = sampler.uniform(u.shape, alpha)
        z = alpha + torch.logit(u)
        b = (z > 0).to(alpha.dtype).detach()
        log_p, log_1mp = F.logsigmoid(alpha), F.logsigmoid(-alpha)
        # b = 1: v' = 1 - p + v p, 1 - v' = p (1 - v).   b = 0: v' = v (1 - p), 1 - v' = 1 - v (1 - p).
        log_v1 = torch.log1p(-torch.exp(log_p) * (1 - v))  # log(1 - p(1 - v))
        log_1mv1 = log_p + torch.log1p(-v)
        log_v0 = torch.log(v) + log_1mp
        log_1mv0 = torch.log1p(-v * torch.exp(log_1mp))
        z_cond = alpha + torch.where(b > 0, log_v1 - log_1mv1, log_v0 - log_1mv0)
        relaxed = cost(torch.sigmoid(z / self.temperature))
        relaxed_cond = cost(torch.sigmoid(z_cond / self.temperature))
        with torch.no_grad():
            learning_signal = cost(b) - self.eta * relaxed_cond
        per_sample = learning_signal * dist.log_prob(b) + self.eta * (relaxed - relaxed_cond)
        return mean_over_samples(per_sample)
