"""Continuous relaxations of discrete samples: Gumbel-softmax (Concrete), straight-through and its
Rao-Blackwellisation over the noise given the sample (Gumbel-Rao).

All three are biased: the relaxed sample ``z`` is not the discrete sample, so the benchmark measures
their bias (``bias_significant``), which shrinks as the temperature falls.
"""

from __future__ import annotations

import math

import torch

from .base import Estimator, base_distribution, mean_over_samples
from .options import integer, number
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


def conditional_relaxed(dist, hard: torch.Tensor, sampler, k: int, temperature: float) -> torch.Tensor:
    """``k`` relaxed samples per hard sample from the noise's law *given* the hard sample,
    ``[k, *hard.shape]``: the noise is drawn conditionally and held fixed (no graph), the relaxation
    keeps its graph to the logits.

    Bernoulli (``b = 1[a + logit(u) > 0]``): ``u | b`` is uniform on ``(1 - p, 1)`` or ``(0, 1 - p)``.
    Categorical (Gumbel-max, ``v = logits + g``, ``E_j ~ Exp(1)``): the top
    ``v_i = log Z - log E_i``, the others ``v_j = -log(E_j e^(-logits_j) + E_i / Z)`` (Maddison, Tarlow &
    Minka 2014; Paulus et al. 2021, App. A)."""
    base = base_distribution(dist)
    logits = base.logits
    shape = torch.Size((k,)) + hard.shape
    with torch.no_grad():
        a = logits.detach()
        if isinstance(base, torch.distributions.Bernoulli):
            p = torch.sigmoid(a)
            v = sampler.uniform(shape, a)
            u = torch.where(hard > 0, 1 - p + v * p, v * (1 - p))
            tiny = torch.finfo(a.dtype).tiny
            noise = torch.logit(u.clamp(tiny, 1 - torch.finfo(a.dtype).eps))
        else:
            log_e = torch.log(-torch.log(sampler.uniform(shape, a)))  # log E, E ~ Exp(1)
            log_z = torch.logsumexp(a, -1, keepdim=True)
            log_e_top = (log_e * hard).sum(-1, keepdim=True)
            top = log_z - log_e_top
            others = -torch.logaddexp(log_e - a, log_e_top - log_z)
            noise = torch.where(hard > 0, top, others) - a  # g = v - logits
    if isinstance(base, torch.distributions.Bernoulli):
        return torch.sigmoid((logits + noise) / temperature)
    return torch.softmax((logits + noise) / temperature, -1)


@register
class GumbelRao(_Relaxation):
    r"""Gumbel-Rao (biased, as straight-through): straight-through Gumbel-softmax Rao-Blackwellised
    over the noise given the hard sample.

    .. math:: \hat g = \frac1N\sum_i \nabla f(h)\big|_{h = b_i}\,
              \frac1K\sum_{k=1}^K \nabla_\phi\,\mathrm{softmax}\big((\text{logits} + g_{ik})/T\big),
              \quad g_{ik} \sim \mathrm{Gumbel} \mid \arg\max(\text{logits} + g) = b_i

    implemented as ``f(b + zbar - zbar.detach())`` with ``zbar`` the mean of the K conditional
    relaxations (for Bernoulli, logistic noise given the bit). Its expectation is straight-through's
    at the same temperature; its variance is no larger (Rao-Blackwell), one evaluation of f per
    sample whatever K. (Paulus, Maddison & Krause, "Rao-Blackwellizing the Straight-Through
    Gumbel-Softmax Gradient Estimator", ICLR 2021, Eq. 8.)
    """

    name = "gumbel_rao"
    summary = "straight-through with the relaxed gradient averaged over K noises given the sample (Paulus et al. 2021)"
    options_spec = {"temperature": number(1.0, positive=True, doc="T of the relaxation"),
                    "k": integer(10, minimum=1, doc="conditional noise draws per sample")}

    def elements_per_sample(self, dist, cost=None):
        return (self.k + 1) * max(1, math.prod(dist.event_shape))

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        hard = sampler.sample(dist, n_samples).detach()
        soft = conditional_relaxed(dist, hard, sampler, self.k, self.temperature).mean(0)
        return mean_over_samples(cost(hard + soft - soft.detach()))
