"""Discrete problems with exact gradients by closed form or exact enumeration.

* ``categorical_bandit``: the score-function example of the torch.distributions documentation.
* ``bernoulli_toy``: the toy problem of REBAR (Tucker et al. 2017) and RELAX (Grathwohl et al. 2018).
* ``bernoulli_quadratic``: a non-separable quadratic cost of independent bits.
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D

from estimators.base import ConfigError, sum_last

from .base import Problem, check_number
from .registry import register_problem


def _number_list(key: str, values, min_len: int = 1) -> list[float]:
    try:
        out = [float(check_number(key, v)) for v in list(values)]
    except TypeError:
        raise ConfigError(key, values, "must be a list of numbers") from None
    if len(out) < min_len:
        raise ConfigError(key, values, f"must be a list of at least {min_len} numbers")
    return out


def _probability(key: str, p) -> float:
    p = float(check_number(key, p))
    if not 0.0 < p < 1.0:
        raise ConfigError(key, p, "must be a probability with 0 < p < 1")
    return p


class BernoulliProblem(Problem):
    """``b ~ Bernoulli(sigmoid(theta))`` in ``dim`` independent bits; theta is named ``logits``."""

    identity_encode = True

    def __init__(self, p: float, dim: int):
        self.p = _probability("problem.p", p)
        self.dim = check_number("problem.dim", dim, integer=True, minimum=1)

    def init_params(self, device, dtype):
        return {"logits": torch.full((self.dim,), math.log(self.p / (1 - self.p)), device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Independent(D.Bernoulli(logits=phi["logits"], validate_args=False), 1, validate_args=False)


@register_problem
class BernoulliToy(BernoulliProblem):
    """``f(b) = sum_j (b_j - t)^2``; ``E f = sum_j p_j (1-t)^2 + (1-p_j) t^2``."""

    name = "bernoulli_toy"

    def __init__(self, p: float = 0.3, t: float = 0.45, dim: int = 1):
        super().__init__(p, dim)
        self.t = float(check_number("problem.t", t))

    def options(self):
        return {"p": self.p, "t": self.t, "dim": self.dim}

    def cost(self, b):
        return sum_last((b - self.t) ** 2)

    def expected_cost(self, dist):
        probs = dist.base_dist.probs
        return sum_last(probs * (1 - self.t) ** 2 + (1 - probs) * self.t**2)


@register_problem
class BernoulliQuadratic(BernoulliProblem):
    """``f(b) = ||W b - y||^2 / dim`` with ``W`` (``dim x dim``, entries N(0, 1/dim)) and ``y``
    (N(0, 1)) drawn from ``data_seed``. Independent bits make the expectation closed form:
    ``E f = (||W p - y||^2 + sum_j p_j (1 - p_j) ||W_j||^2) / dim``."""

    name = "bernoulli_quadratic"

    def __init__(self, p: float = 0.5, dim: int = 20, data_seed: int = 0):
        super().__init__(p, dim)
        self.data_seed = check_number("problem.data_seed", data_seed, integer=True, minimum=0)
        g = torch.Generator().manual_seed(self.data_seed)
        self.W = torch.randn(self.dim, self.dim, generator=g, dtype=torch.float64) / math.sqrt(self.dim)
        self.y = torch.randn(self.dim, generator=g, dtype=torch.float64)

    def options(self):
        return {"p": self.p, "dim": self.dim, "data_seed": self.data_seed}

    def _data(self, like):
        return self.W.to(like.device, like.dtype), self.y.to(like.device, like.dtype)

    def cost(self, b):
        W, y = self._data(b)
        return ((b @ W.T - y) ** 2).sum(-1) / self.dim

    def expected_cost(self, dist):
        probs = dist.base_dist.probs
        W, y = self._data(probs)
        mean_part = ((probs @ W.T - y) ** 2).sum(-1)
        var_part = (probs * (1 - probs) * (W**2).sum(0)).sum(-1)
        return (mean_part + var_part) / self.dim


@register_problem
class CategoricalBandit(Problem):
    """``a ~ Categorical(logits=theta)``, ``f(a) = rewards[a]``; samples are one-hot vectors, so
    ``f(a) = a . rewards`` (which also evaluates relaxed samples). ``E f = softmax(theta) . rewards``."""

    name = "categorical_bandit"
    identity_encode = True

    def __init__(self, logits=(0.0, 0.0, 0.0, 0.0), rewards=(1.0, 2.0, 3.0, 4.0)):
        self.logits = _number_list("problem.logits", logits, min_len=2)
        self.rewards = _number_list("problem.rewards", rewards, min_len=2)
        if len(self.rewards) != len(self.logits):
            raise ConfigError("problem.rewards", self.rewards, f"must have as many entries as problem.logits ({len(self.logits)})")

    def options(self):
        return {"logits": self.logits, "rewards": self.rewards}

    def init_params(self, device, dtype):
        return {"logits": torch.tensor(self.logits, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.OneHotCategorical(logits=phi["logits"], validate_args=False)

    def cost(self, a):
        return a @ torch.tensor(self.rewards, device=a.device, dtype=a.dtype)

    def expected_cost(self, dist):
        return dist.probs @ torch.tensor(self.rewards, device=dist.probs.device, dtype=dist.probs.dtype)
