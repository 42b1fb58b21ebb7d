"""ReinMax: second-order straight-through for Bernoulli and categorical variables (biased)."""

from __future__ import annotations

import torch

from .base import Estimator, base_distribution, linear_surrogate, mean_over_samples
from .options import number
from .registry import register
from .relaxed import relaxed_sample


def softmax_vjp(pi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``J_softmax(pi)^T g = pi * g - pi <pi, g>`` over the last dimension."""
    return pi * g - pi * (pi * g).sum(-1, keepdim=True)


@register
class ReinMax(Estimator):
    r"""ReinMax (biased): Heun's method where straight-through is the forward Euler step.

    With the one-hot sample :math:`D \sim \mathrm{Cat}(\pi_0)`, :math:`\pi_0 = \mathrm{softmax}(\theta)`,
    :math:`\pi_1 = \tfrac12(\mathrm{softmax}(\theta/\tau) + D)` and :math:`G = \nabla_y f(y)|_{y=D}`:

    .. math:: \hat g_\theta = 2\,J_{\mathrm{softmax}}(\pi_1)^\top G - \tfrac12\,J_{\mathrm{softmax}}(\pi_0)^\top G,
              \qquad J_{\mathrm{softmax}}(\pi)^\top G = \pi \odot G - \pi\,\langle\pi, G\rangle

    A Bernoulli bit is the two-class case with logits (0, alpha):
    :math:`\hat g_\alpha = [2 q(1-q) - \tfrac12 p(1-p)]\,\partial f/\partial b`, with :math:`p = \sigma(\alpha)`
    and :math:`q = \tfrac12(\sigma(\alpha/\tau) + b)`. Needs a cost differentiable in its input
    (evaluated at the discrete sample). (Liu, Zhao, Qiang, Wang & Gao, "Bridging Discrete and
    Backpropagation: Straight-Through and Beyond", NeurIPS 2023, Algorithm 2; the authors
    recommend ``temperature >= 1``.)
    """

    name = "reinmax"
    summary = "second-order straight-through, `2 J(π₁)ᵀ∇f - ½ J(π₀)ᵀ∇f` (Liu et al. 2023); exact for quadratic costs"
    families = frozenset({"bernoulli", "categorical"})
    biased = True
    options_spec = {"temperature": number(1.0, positive=True, doc="tau; the paper recommends tau >= 1")}

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        base = base_distribution(dist)
        _, hard = relaxed_sample(dist, n_samples, sampler, self.temperature)  # the sample, from the shared noise
        with torch.enable_grad():
            y = hard.detach().requires_grad_(True)
            (grad_y,) = torch.autograd.grad(cost(y).sum(), y)
        logits = base.logits
        with torch.no_grad():
            if isinstance(base, torch.distributions.Bernoulli):
                p = torch.sigmoid(logits)
                q = 0.5 * (torch.sigmoid(logits / self.temperature) + hard)
                g = (2 * q * (1 - q) - 0.5 * p * (1 - p)) * grad_y
            else:
                pi0 = torch.softmax(logits, -1)
                pi1 = 0.5 * (torch.softmax(logits / self.temperature, -1) + hard)
                g = 2 * softmax_vjp(pi1, grad_y) - 0.5 * softmax_vjp(pi0, grad_y)
        return linear_surrogate([(mean_over_samples(g), logits)], len(dist.batch_shape))
