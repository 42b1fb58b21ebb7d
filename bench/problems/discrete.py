"""Discrete problems with exact gradients by closed form or exact enumeration.

* ``categorical_bandit``: the score-function example of the torch.distributions documentation.
* ``bernoulli_toy``: the toy problem of REBAR (Tucker et al. 2017) and RELAX (Grathwohl et al. 2018).
* ``bernoulli_quadratic``: a non-separable quadratic cost of independent bits.
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D

from estimators.base import sum_last
from estimators.options import ConfigError, choice, integer, number, numbers, probability

from .base import Problem
from .registry import register_problem


class BernoulliProblem(Problem):
    """``b ~ Bernoulli(sigmoid(theta))`` in ``dim`` independent bits; theta is named ``logits``."""

    identity_encode = True

    def init_params(self, device, dtype):
        return {"logits": torch.full((self.dim,), math.log(self.p / (1 - self.p)), device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Independent(D.Bernoulli(logits=phi["logits"], validate_args=False), 1, validate_args=False)


@register_problem
class BernoulliToy(BernoulliProblem):
    """``f(b) = sum_j (b_j - t)^2``; ``E f = sum_j p_j (1-t)^2 + (1-p_j) t^2``."""

    name = "bernoulli_toy"
    summary = "b ~ Bernoulli(p) in `dim` bits, f = Σ (b-t)² (the REBAR/RELAX toy)"
    options_spec = {"p": probability(0.3), "t": number(0.45), "dim": integer(1, minimum=1)}

    def cost(self, b):
        return sum_last((b - self.t) ** 2)

    def expected_cost(self, dist):
        probs = dist.base_dist.probs
        return sum_last(probs * (1 - self.t) ** 2 + (1 - probs) * self.t**2)

    def optimum(self):
        return self.dim * min((1 - self.t) ** 2, self.t**2)


@register_problem
class BernoulliQuadratic(BernoulliProblem):
    """``f(b) = ||W b - y||^2 / dim`` with ``W`` (``dim x dim``, entries N(0, 1/dim)) and ``y``
    (N(0, 1)) drawn from ``data_seed``. Independent bits make the expectation closed form:
    ``E f = (||W p - y||^2 + sum_j p_j (1 - p_j) ||W_j||^2) / dim``."""

    name = "bernoulli_quadratic"
    summary = "b ~ Bernoulli(p) in `dim` bits, f = ‖W b - y‖²/dim, W and y from `data_seed` (non-separable)"
    options_spec = {"p": probability(0.5), "dim": integer(20, minimum=1), "data_seed": integer(0, minimum=0)}
    MAX_ENUMERATED_DIM = 22  # the optimum (for the training gap) is found by enumerating 2^dim bit vectors

    def setup(self):
        g = torch.Generator().manual_seed(self.data_seed)
        self.W = torch.randn(self.dim, self.dim, generator=g, dtype=torch.float64) / math.sqrt(self.dim)
        self.y = torch.randn(self.dim, generator=g, dtype=torch.float64)
        self._optimum = None

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

    def optimum(self):
        """``min_b f(b)`` (the infimum of ``E f`` over product Bernoullis), by enumeration in blocks."""
        if self._optimum is None and self.dim <= self.MAX_ENUMERATED_DIM:
            best = math.inf
            codes = torch.arange(2**self.dim)
            bits = 2 ** torch.arange(self.dim)
            for block in codes.split(2**16):
                b = ((block[:, None] & bits) > 0).double()
                best = min(best, float(self.cost(b).min()))
            self._optimum = best
        return self._optimum


@register_problem
class CategoricalBandit(Problem):
    """``a ~ Categorical(logits=theta)``, ``f(a) = rewards[a]``; samples are one-hot vectors, so
    ``f(a) = a . rewards`` (which also evaluates relaxed samples). ``E f = softmax(theta) . rewards``."""

    name = "categorical_bandit"
    summary = "a ~ Categorical(logits) (one-hot), f = rewards[a]"
    identity_encode = True
    options_spec = {"logits": numbers((0.0, 0.0, 0.0, 0.0), min_len=2), "rewards": numbers((1.0, 2.0, 3.0, 4.0), min_len=2)}

    def setup(self):
        if len(self.rewards) != len(self.logits):
            raise ConfigError("problem.rewards", self.rewards, f"must have as many entries as problem.logits ({len(self.logits)})")

    def init_params(self, device, dtype):
        return {"logits": torch.tensor(self.logits, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.OneHotCategorical(logits=phi["logits"], validate_args=False)

    def cost(self, a):
        return a @ torch.tensor(self.rewards, device=a.device, dtype=a.dtype)

    def expected_cost(self, dist):
        return dist.probs @ torch.tensor(self.rewards, device=dist.probs.device, dtype=dist.probs.dtype)

    def optimum(self):
        return min(self.rewards)


@register_problem
class ReinMaxPolynomial(BernoulliProblem):
    """The polynomial programming toy of Liu, Zhao, Qiang, Wang & Gao, "Bridging Discrete and
    Backpropagation: Straight-Through and Beyond", NeurIPS 2023: ``dim`` independent Bernoulli
    latents (default 128), theta = their logits (default 0), ``f(z) = mean_d |z_d - 0.45|^p``.

    Exact: ``E f = mean_d [p_d 0.55^p + (1 - p_d) 0.45^p]``, linear in each ``p_d = sigmoid(theta_d)``
    (tested against enumeration at a small dim). The infimum is ``0.45^p``, every bit at 0."""

    name = "reinmax_polynomial"
    summary = "`dim` bits from logits 0, f = mean_d |z_d - 0.45|^p (Liu et al., NeurIPS 2023)"
    options_spec = {"dim": integer(128, minimum=1), "p": choice(2.0, (1.5, 2.0, 3.0), "the exponent: 1.5, 2 or 3")}
    CENTER = 0.45

    def init_params(self, device, dtype):
        return {"logits": torch.zeros(self.dim, device=device, dtype=dtype)}

    def cost(self, z):
        return sum_last((z - self.CENTER).abs() ** self.p) / self.dim

    @property
    def elementwise_cost(self):
        return lambda z: (z - self.CENTER).abs() ** self.p / self.dim

    def expected_cost(self, dist):
        probs = dist.base_dist.probs
        hi, lo = (1 - self.CENTER) ** self.p, self.CENTER**self.p
        return sum_last(probs * hi + (1 - probs) * lo) / self.dim

    def optimum(self):
        return min(self.CENTER, 1 - self.CENTER) ** self.p
