"""The estimator interface, the capabilities a distribution offers, and the two errors.

An estimator turns ``(distribution, cost, n_samples)`` into a *surrogate loss*, one value per
replicate, whose gradient with respect to the distribution's parameters is the gradient estimate.
It never sees the problem, only the distribution and the cost, so it runs on every problem whose
distribution offers the capabilities it declares in ``requires``.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import distributions as D


class ConfigError(ValueError):
    """A configuration value that is not allowed; the message names the key and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


class NotApplicable(ValueError):
    """The estimator does not apply to this distribution (a clear reason, never a silent run)."""


class Cost:
    """The cost ``f``, batched over leading sample dimensions, and optionally its exact
    expectation under a distribution (``expectation(dist)``: one value per replicate,
    differentiable in the distribution's parameters), which the ``exact`` estimator uses."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor],
                 expectation: Callable[[D.Distribution], torch.Tensor] | None = None):
        self.fn, self._expectation = fn, expectation

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    @property
    def has_expectation(self) -> bool:
        return self._expectation is not None

    def expectation(self, dist: D.Distribution) -> torch.Tensor:
        if self._expectation is None:
            raise NotApplicable("this cost has no exact expectation")
        return self._expectation(dist)


def mean_over_samples(values: torch.Tensor) -> torch.Tensor:
    """Mean over the leading sample dimension. With one sample this is indexing: torch's
    reduction kernel over a dimension of size 1 costs about four elementwise multiplies."""
    return values[0] if values.shape[0] == 1 else values.mean(0)


def sum_last(values: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension (a squeeze when it has size 1, for the same reason)."""
    return values.squeeze(-1) if values.shape[-1] == 1 else values.sum(-1)


def base_distribution(dist: D.Distribution) -> D.Distribution:
    """The distribution under any ``Independent`` wrappers."""
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    return dist


_FAMILIES = {D.Normal: "gaussian", D.Bernoulli: "bernoulli", D.Categorical: "categorical",
             D.OneHotCategorical: "categorical"}


def capabilities(dist: D.Distribution, cost: Cost | None = None) -> frozenset[str]:
    """What a distribution (and cost) offer to estimators: ``rsample``, ``continuous`` or
    ``discrete``, the family name (``gaussian``, ``bernoulli``, ``categorical``) when it is one
    we know, and ``exact_expectation`` when the cost knows its expectation."""
    caps = {"discrete" if dist.support.is_discrete else "continuous"}
    if dist.has_rsample:
        caps.add("rsample")
    family = _FAMILIES.get(type(base_distribution(dist)))
    if family:
        caps.add(family)
    if cost is not None and cost.has_expectation:
        caps.add("exact_expectation")
    return frozenset(caps)


def linear_surrogate(pairs) -> torch.Tensor:
    """``sum <g.detach(), p>`` over ``(g, p)`` pairs, per replicate (leading dimension): its
    gradient with respect to each ``p`` is ``g``. For estimators that form the gradient with
    respect to the distribution's parameters themselves (measure-valued, ARM, ...)."""
    total = 0
    for g, p in pairs:
        prod = g.detach() * p
        total = total + (prod.reshape(prod.shape[0], -1).sum(1) if prod.dim() > 1 else prod)
    return total


class Estimator:
    """Base class: one signature for every estimator.

    Subclasses set ``name``, ``requires`` (capabilities the distribution must offer),
    ``evals_per_sample`` (evaluations of the cost behind one sample) and ``min_samples``, and
    implement :meth:`surrogate`.
    """

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset()
    families: ClassVar[frozenset[str] | None] = None  # if set, the distribution must be one of these
    evals_per_sample: ClassVar[int] = 1
    min_samples: ClassVar[int] = 1
    biased: ClassVar[bool] = False  # a relaxation: its bias is measured, not expected to vanish

    def options(self) -> dict[str, Any]:
        """The options that distinguish this estimator's jobs (written to results)."""
        return {}

    def applies_to(self, caps: frozenset[str]) -> str | None:
        """``None`` if an estimator with these needs applies to these capabilities, else why not."""
        missing = self.requires - caps
        if missing:
            return f"needs {', '.join(sorted(missing))}"
        if self.families is not None and not self.families & caps:
            return f"applies to {' or '.join(sorted(self.families))} distributions only"
        return None

    def check(self, dist: D.Distribution, n_samples: int, cost: Cost | None = None) -> None:
        """Raise :class:`NotApplicable` or :class:`ConfigError` if this run cannot be done."""
        caps = capabilities(dist, cost)
        reason = self.applies_to(caps)
        if reason:
            raise NotApplicable(
                f"{self.name} {reason}; {type(base_distribution(dist)).__name__} offers {', '.join(sorted(caps))}"
            )
        if n_samples < self.min_samples:
            raise ConfigError("n_samples", n_samples, f"{self.describe()} needs n_samples >= {self.min_samples}")

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{self.name}({opts})" if opts else self.name

    def evals_per_estimate(self, n_samples: int, dist: D.Distribution | None = None) -> int:
        """Evaluations of the cost behind one estimate (``dist``: one replicate's distribution)."""
        return self.evals_per_sample * n_samples

    def init_state(self) -> Any:
        """State carried from one estimate to the next (an EMA baseline); ``None`` if stateless."""
        return None

    def surrogate(self, dist: D.Distribution, cost: Cost, n_samples: int, sampler, state: Any,
                  params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Surrogate loss with one entry per replicate (the distribution's leading batch dimension).

        ``sampler`` (:class:`estimators.sampling.Sampler`) draws from the job's random stream, so
        estimators that share a seed see the same samples. ``state`` is what :meth:`init_state`
        returned and is updated in place; replicates are consecutive steps, in order. ``params``
        are the tensors the distribution was built from (leading replicate dimension), for
        estimators that need per-sample scores.
        """
        raise NotImplementedError
