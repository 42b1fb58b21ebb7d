"""The reparameterization (pathwise) estimator."""

from __future__ import annotations

from .base import Estimator, mean_over_samples
from .registry import register


@register
class Reparameterization(Estimator):
    r"""Pathwise / reparameterization estimator.

    .. math:: \hat g = \frac1N \sum_{i=1}^N \nabla_\phi f\big(g(\epsilon_i; \phi)\big),
              \quad x = g(\epsilon;\phi) \sim q_\phi,\ \epsilon \sim p(\epsilon)

    Surrogate ``mean_i f(rsample())``. Needs a reparameterizable distribution (``has_rsample``)
    and a differentiable cost. (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014;
    Rezende, Mohamed & Wierstra, ICML 2014; Mohamed et al. 2020, Section 5.)
    """

    name = "reparameterization"
    summary = "`mean_i ∇f(g(ε_i; φ))`: pathwise (Kingma & Welling 2014)"
    requires = frozenset({"rsample"})

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        return mean_over_samples(cost(sampler.rsample(dist, n_samples)))
