"""IndeCateR: the unbiased estimator for products of independent categorical variables."""

from __future__ import annotations

import math

import torch

from .base import Estimator, base_distribution, mean_over_samples
from .registry import register


def _variables(dist) -> tuple[int, int, bool]:
    """``(D, K, bernoulli)``: the number of independent variables and of categories of each."""
    base = base_distribution(dist)
    if isinstance(base, torch.distributions.Bernoulli):
        return max(1, math.prod(dist.event_shape)), 2, True
    return max(1, math.prod(dist.event_shape[:-1])), dist.event_shape[-1], False


@register
class IndeCateR(Estimator):
    r"""IndeCateR (unbiased), for products of independent categorical (or Bernoulli) variables.

    With one sample :math:`x \sim \prod_d p_d` per term:

    .. math:: \hat g = \frac1N\sum_i \sum_{d=1}^D \sum_{k=1}^K \nabla_\theta p_d(k)\, f(x^{(i)}_{-d}, x_d = k)

    unbiased because, for each variable, summing over its K values given the others is exact
    (Rao-Blackwellisation per variable). D x K evaluations of f per sample. (De Smet, Sansone &
    Zuidberg Dos Martires, "Differentiable Sampling of Categorical Distributions Using the
    CatLog-Derivative Trick", NeurIPS 2023, Eq. 10.)
    """

    name = "indecater"
    summary = "`Σ_d Σ_k ∇p_d(k) f(x_{-d}, x_d=k)`, D·K evaluations per sample (De Smet et al. 2023)"
    families = frozenset({"bernoulli", "categorical"})

    def evals_per_estimate(self, n_samples, dist=None):
        if dist is None:
            return 2 * n_samples
        D, K, _ = _variables(dist)
        return n_samples * D * K

    def elements_per_sample(self, dist, cost=None):
        D, K, _ = _variables(dist)
        return D * K * max(1, math.prod(dist.event_shape))

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        base = base_distribution(dist)
        D, K, bernoulli = _variables(dist)
        event = dist.event_shape
        with torch.no_grad():
            x = sampler.sample(dist, n_samples)  # [n, *batch, *event]
            lead = x.shape[: x.dim() - len(event)]
            # Variant d of x (x with variable d set to k) along a new *leading* dimension, as a cost's
            # contract asks (its batch dimensions, e.g. a problem's images, stay where they are).
            ar = torch.arange(D, device=x.device)
            values = []
            if bernoulli:
                flat = x.reshape(*lead, D).expand(D, *lead, D).clone()  # [D, *lead, D]
                for k in (0.0, 1.0):
                    flat[ar, ..., ar] = k
                    values.append(cost(flat.reshape(D, *lead, *event)))
            else:
                onehot = x.reshape(*lead, D, K).expand(D, *lead, D, K).clone()
                eye = torch.eye(K, dtype=x.dtype, device=x.device)
                for k in range(K):
                    onehot[ar, ..., ar, :] = eye[k]
                    values.append(cost(onehot.reshape(D, *lead, *event)))
            f = torch.stack(values, -1).movedim(0, -2)  # [*lead, D, K]: f(x_{-d}, x_d = k)
            f = mean_over_samples(f)  # the mean over samples commutes with the linear surrogate
        if bernoulli:
            p1 = torch.sigmoid(base.logits).reshape(*dist.batch_shape, D)
            probs = torch.stack([1 - p1, p1], -1)
        else:
            probs = base.probs.reshape(*dist.batch_shape, D, K)
        return (probs * f).sum((-2, -1))
