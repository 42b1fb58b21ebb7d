"""The distribution families estimators know by name, each with the transform that turns the job's
standard noise into its samples: one table, read by :func:`estimators.base.capabilities` (the family
a distribution offers) and by :class:`estimators.sampling.Sampler` (how to draw it).

* Gaussian: ``x = loc + scale * eps``, ``eps ~ N(0, 1)``;
* Bernoulli: ``b = 1[logits + logit(u) > 0]``, ``u ~ U(0, 1)`` (the logistic form the relaxations
  use: Gumbel-softmax, straight-through and REBAR drawing the same ``u`` get the same ``b``);
* one-hot categorical: ``one_hot(argmax(logits + g))``, Gumbel noise ``g = -log(-log u)``
  (Gumbel-max; the Gumbel-softmax relaxation of the same ``g`` has the same argmax);
* categorical (indices): ``argmax(logits + g)``.
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


class Family(NamedTuple):
    name: str  # the capability it offers (``gaussian``, ``bernoulli``, ``categorical``)
    transform: Callable  # (sampler, base distribution, full sample shape) -> samples, with a graph where reparameterizable


FAMILIES: dict[type, Family] = {
    D.Normal: Family("gaussian", _normal),
    D.Bernoulli: Family("bernoulli", _bernoulli),
    D.OneHotCategorical: Family("categorical", _one_hot),
    D.Categorical: Family("categorical", _categorical),
}


def family_of(dist: D.Distribution) -> Family | None:
    """The known family of a distribution (under its ``Independent`` wrappers), or ``None``."""
    return FAMILIES.get(type(base_distribution(dist)))
