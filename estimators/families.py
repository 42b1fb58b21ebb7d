"""The distribution families estimators know by name, each with the transform that turns the job's
standard noise into its samples: one table, read by :func:`estimators.base.capabilities` (the family
a distribution offers) and by :class:`estimators.sampling.Sampler` (how to draw it).

* Gaussian: ``x = loc + scale * eps``, ``eps ~ N(0, 1)``;
* Bernoulli: ``b = 1[logits + logit(u) > 0]``, ``u ~ U(0, 1)`` (the logistic form the relaxations
  use: Gumbel-softmax, straight-through and REBAR drawing the same ``u`` get the same ``b``);
* one-hot categorical: ``one_hot(argmax(logits + g))``, Gumbel noise ``g = -log(-log u)``
  (Gumbel-max; the Gumbel-softmax relaxation of the same ``g`` has the same argmax);
* categorical (indices): ``argmax(logits + g)``;
* Gamma, Beta, Dirichlet: torch's own samplers (``_standard_gamma``, ``_sample_dirichlet``) on the
  job's generator, with torch's implicit reparameterisation gradient (``_standard_gamma_grad``,
  the Dirichlet's) attached: the same values and gradients as their ``rsample``, but from the
  job's stream, so every estimator sees the same samples (always iid: ``sampling=`` leaves them).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import distributions as D


def base_distribution(dist: D.Distribution) -> D.Distribution:
    """The distribution under any ``Independent`` wrappers."""
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    return dist


def _normal(sampler, dist: D.Normal, shape: torch.Size) -> torch.Tensor:
    return dist.loc + dist.scale * sampler.normal(shape, dist.loc)


def _bernoulli(sampler, dist: D.Bernoulli, shape: torch.Size) -> torch.Tensor:
    u = sampler.uniform(shape, dist.logits)
    return (dist.logits + torch.logit(u) > 0).to(dist.logits.dtype)


def _one_hot(sampler, dist: D.OneHotCategorical, shape: torch.Size) -> torch.Tensor:
    index = (dist.logits + sampler.gumbel(shape, dist.logits)).argmax(-1)
    return torch.nn.functional.one_hot(index, dist.logits.shape[-1]).to(dist.logits.dtype)


def _categorical(sampler, dist: D.Categorical, shape: torch.Size) -> torch.Tensor:
    return (dist.logits + sampler.gumbel(shape + dist.logits.shape[-1:], dist.logits)).argmax(-1)


class _ImplicitSample(torch.autograd.Function):
    """``x`` (samples of concentration ``a``, drawn without a graph) with torch's implicit
    ``dx/da``: ``vjp(a, x, grad)`` is the product of the output's gradient with it."""

    @staticmethod
    def forward(ctx, a, x, vjp):
        ctx.save_for_backward(a, x)
        ctx.vjp = vjp
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        return ctx.vjp(a, x, grad), None, None


def _gamma_vjp(a, x, grad):
    return grad * torch._standard_gamma_grad(a, x)


def _dirichlet_vjp(a, x, grad):
    from torch.distributions.dirichlet import _Dirichlet_backward

    return _Dirichlet_backward(x, a, grad)


def _gamma(sampler, dist: D.Gamma, shape: torch.Size) -> torch.Tensor:
    a = dist.concentration.expand(shape)
    x = sampler.standard_gamma(a.detach()).clamp_min(torch.finfo(a.dtype).tiny)
    return _ImplicitSample.apply(a, x, _gamma_vjp) / dist.rate.expand(shape)


def _dirichlet_of(sampler, a: torch.Tensor) -> torch.Tensor:
    return _ImplicitSample.apply(a, sampler.dirichlet(a.detach()), _dirichlet_vjp)


def _beta(sampler, dist: D.Beta, shape: torch.Size) -> torch.Tensor:
    a = torch.stack([dist.concentration1, dist.concentration0], -1).expand(*shape, 2)
    return _dirichlet_of(sampler, a).select(-1, 0)


def _dirichlet(sampler, dist: D.Dirichlet, shape: torch.Size) -> torch.Tensor:
    return _dirichlet_of(sampler, dist.concentration.expand(shape))


class Family(NamedTuple):
    name: str  # the capability it offers (``gaussian``, ``bernoulli``, ``categorical``)
    transform: Callable  # (sampler, base distribution, full sample shape) -> samples, with a graph where reparameterizable


FAMILIES: dict[type, Family] = {
    D.Normal: Family("gaussian", _normal),
    D.Bernoulli: Family("bernoulli", _bernoulli),
    D.OneHotCategorical: Family("categorical", _one_hot),
    D.Categorical: Family("categorical", _categorical),
    D.Gamma: Family("gamma", _gamma),
    D.Beta: Family("beta", _beta),
    D.Dirichlet: Family("dirichlet", _dirichlet),
}


def family_of(dist: D.Distribution) -> Family | None:
    """The known family of a distribution (under its ``Independent`` wrappers), or ``None``."""
    return FAMILIES.get(type(base_distribution(dist)))
