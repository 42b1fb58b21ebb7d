"""The exact gradient as an estimator: the zero-variance reference row."""

from __future__ import annotations

from .base import Estimator
from .registry import register


@register
class Exact(Estimator):
    r"""The exact gradient :math:`\nabla_\phi E_{q_\phi}[f]`, from the cost's closed-form (or exactly
    enumerated) expectation under the distribution: surrogate ``E[f]`` itself. Zero variance and no
    evaluations of f: the reference every comparison can draw. Applies when the problem knows its
    expectation."""

    name = "exact"
    requires = frozenset({"exact_expectation"})
    evals_per_sample = 0

    def evals_per_estimate(self, n_samples, dist=None):
        return 0

    def elements_per_sample(self, dist, cost=None):
        if cost is not None and cost.expectation_elements:
            return cost.expectation_elements
        return super().elements_per_sample(dist, cost)

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        return cost.expectation(dist)
