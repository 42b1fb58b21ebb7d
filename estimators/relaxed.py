"""Continuous relaxations of discrete samples: Gumbel-softmax (Concrete) and straight-through.

Both are biased: the relaxed sample ``z`` is not the discrete sample, so the benchmark measures
their bias (``bias_significant``), which shrinks as the temperature falls.
"""

from __future__ import annotations

import torch

from .base import Estimator, base_distribution, mean_over_samples
from .options import number
from .registry import register


def relaxed_sample(dist, n_samples: int, sampler, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(soft, hard)`` samples of a Bernoulli or one-hot categorical distribution, from the same
    noise as :meth:`estimators.sampling.Sampler.sample` (so ``hard`` equals its sample).

    Bernoulli: ``soft = sigmoid((logits + logit(u)) / T)``, ``hard = 1[logits + logit(u) > 0]``.
    Categorical: ``soft = softmax((logits + g) / T)``, ``hard = one_hot(argmax(logits + g))``."""
    base = base_distribution(dist)
    shape = torch.Size((n_samples,)) + dist.batch_shape + dist.event_shape
    if isinstance(base, torch.distributions.Bernoulli):
        z = base.logits + torch.logit(sampler.uniform(shape, base.logits))
        return torch.sigmoid(z / temperature), (z > 0).to(z.dtype).detach()
    y = base.logits + sampler.gumbel(shape, base.logits)
    hard = torch.nn.functional.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
    return torch.softmax(y / temperature, -1), hard


class _Relaxation(Estimator):
    """A relaxation of Bernoulli or categorical samples at a ``temperature`` (biased)."""

    families = frozenset({"bernoulli", "categorical"})
    biased = True

    options_spec = {"temperature": number(1.0, positive=True, doc="T of the relaxation")}


@register
class GumbelSoftmax(_Relaxation):
    r"""Gumbel-softmax / Concrete relaxation (biased).

    .. math:: \hat g = \frac1N\sum_i \nabla_\phi f(z_i), \quad
              z_i = \mathrm{softmax}\big((\text{logits} + g_i)/T\big),\ g_i \sim \mathrm{Gumbel}

    (for Bernoulli, :math:`z = \sigma((\text{logit } p + \text{logit } u)/T)`). The cost is evaluated
    at the relaxed sample, so the estimate is biased; the bias vanishes as :math:`T \to 0` while
    the variance grows. (Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax",
    ICLR 2017; Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017.)
    """

    name = "gumbel_softmax"
    summary = "`∇f(z)`, z the Concrete relaxation (Jang et al. 2017; Maddison et al. 2017)"

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        soft, _ = relaxed_sample(dist, n_samples, sampler, self.temperature)
        return mean_over_samples(cost(soft))


@register
class StraightThrough(_Relaxation):
    r"""Straight-through Gumbel-softmax (biased): the hard sample forward, the relaxed gradient back.

    .. math:: \hat g = \frac1N\sum_i \nabla f(h)\big|_{h = b_i} \, \nabla_\phi z_i,
              \quad b_i = \text{hard}(z_i)

    implemented as ``f(b + z - z.detach())``. (Bengio, Leonard & Courville 2013; Jang et al.,
    ICLR 2017, Section 2.2.)
    """

    name = "straight_through"
    summary = "hard sample forward, relaxed gradient back (Bengio et al. 2013)"

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        soft, hard = relaxed_sample(dist, n_samples, sampler, self.temperature)
        return mean_over_samples(cost(hard + soft - soft.detach()))
