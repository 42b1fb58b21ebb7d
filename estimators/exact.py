"""The exact gradient as an estimator: the zero-variance reference row."""

from __future__ import annotations

import torch

from .base import Estimator, linear_surrogate
from .registry import register


@register
class Exact(Estimator):
    r"""The exact gradient :math:`\nabla_\phi E_{q_\phi}[f]`, from the cost's closed-form (or exactly
    enumerated) expectation under the distribution: surrogate ``E[f]`` itself. Zero variance and no
    evaluations of f: the reference every comparison can draw. Applies when the problem knows its
    expectation."""

    name = "exact"
    summary = "the exact gradient (closed form or enumeration): zero variance, the reference row"
    requires = frozenset({"exact_expectation"})
    evals_per_sample = 0

    def evals_per_estimate(self, n_samples, dist=None):
        return 0

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        steps = dist.batch_shape[0] if dist.batch_shape else 1
        if steps > 1 and params and cost.expectation_of is not None and all(
                torch.equal(p, p[:1].expand_as(p)) for p in params.values()):
            # Consecutive steps at the same parameters (the harness's replicates): one expectation,
            # its gradient given to every step.
            first = {k: v[:1].detach().requires_grad_(True) for k, v in params.items()}
            grads = torch.autograd.grad(cost.expectation_of(first).sum(), list(first.values()), allow_unused=True)
            return linear_surrogate([(torch.zeros_like(v) if g is None else g.expand_as(params[k]), params[k])
                                     for (k, v), g in zip(first.items(), grads)], len(dist.batch_shape))
        return cost.expectation(dist)
