"""The estimator interface, the capabilities a distribution offers, and the cost it is applied to.

An estimator turns ``(distribution, cost, n_samples)`` into a *surrogate loss* whose gradient with
respect to the distribution's parameters is the gradient estimate. It never sees the problem, only
the distribution and the cost, so it runs on every problem whose distribution offers the
capabilities it declares in ``requires``.

Batch dimensions. The harness gives the distribution a leading batch dimension of *consecutive
steps* (the replicates of a measurement, ``[C, ...]``); every other batch dimension (independent
runs, a problem's own batch such as prompts) is independent. Stateless estimators treat all batch
dimensions alike. A stateful estimator (an EMA baseline) carries its state along dimension 0 and
keeps one state per entry of the other batch dimensions.

In your own training loop call the estimator itself (:meth:`Estimator.__call__`): a distribution
and a plain cost function in, a surrogate loss out; each call is one step.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, ClassVar

import torch
from torch import distributions as D

from .families import base_distribution, family_of
from .options import ConfigError, Configurable
from .sampling import Sampler

__all__ = ["ConfigError", "ContractError", "Cost", "Estimator", "NotApplicable", "capabilities"]


class NotApplicable(ValueError):
    """The estimator does not apply to this distribution (a clear reason, never a silent run)."""


class ContractError(ValueError):
    """A cost or problem that breaks its contract (a wrong shape, say): one line naming it."""


class Cost:
    """The cost ``f``, batched over leading sample and batch dimensions (``[*lead, *event] -> [*lead]``).

    Optional knowledge a problem can offer estimators:

    * ``expectation(dist)``: the exact ``E[f]`` under ``dist`` (one value per batch entry,
      differentiable in the distribution's parameters), used by the ``exact`` estimator;
    * ``elementwise``: ``f1`` with ``f(x) = sum_j f1(x_j)`` over the event's coordinates (a
      separable cost), which lets coordinate-wise estimators (measure-valued) evaluate
      ``f(x_{-j}, a) - f(x_{-j}, b) = f1(a) - f1(b)`` without rebuilding ``x``;
    * ``expectation_of(params)``: the same expectation from the parameters the distribution is
      built from (lets the exact estimator compute it once for many replicates at one theta);
    * ``coordinate_replaced(x, values)``: ``f`` with coordinate ``j`` of ``x`` replaced by
      ``values_j``, for every ``j`` (``[..., D] -> [..., D]``), when the problem can do it faster
      than rebuilding ``x`` once per coordinate (measure-valued estimators use it).
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor],
                 expectation: Callable[[D.Distribution], torch.Tensor] | None = None,
                 elementwise: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 expectation_of: Callable[[dict], torch.Tensor] | None = None,
                 coordinate_replaced: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 name: str | None = None, event_ndim: int | None = None, dtype: torch.dtype | None = None):
        if not callable(fn):
            raise TypeError(f"cost must be callable (a function of the samples), got {type(fn).__name__}")
        self.fn, self._expectation, self.elementwise = fn, expectation, elementwise
        self.expectation_of = expectation_of  # E[f] from the distribution's parameters (a dict)
        self.coordinate_replaced = coordinate_replaced
        self.name = name or f"cost {getattr(fn, '__qualname__', type(fn).__name__)}"
        self.event_ndim = event_ndim  # when set, every call checks it returns one value per sample
        # When set, a floating cost of another dtype is cast to it: a problem whose samples are
        # integers (tokens) cannot know the run's dtype from them.
        self.dtype = dtype

    def checked(self, dist: D.Distribution) -> "Cost":
        """This cost, checking at every call that it returns one value per sample of ``dist``, in the
        dtype of ``dist``'s parameters."""
        return Cost(self.fn, self._expectation, self.elementwise, self.expectation_of, self.coordinate_replaced,
                    self.name, len(dist.event_shape), parameter_dtype(dist))

    def in_dtype(self, dtype: torch.dtype) -> "Cost":
        """This cost, its values cast to ``dtype`` (without the per-call shape check)."""
        return Cost(self.fn, self._expectation, self.elementwise, self.expectation_of, self.coordinate_replaced,
                    self.name, self.event_ndim, dtype)

    @classmethod
    def wrap(cls, cost: "Cost | Callable") -> "Cost":
        return cost if isinstance(cost, Cost) else cls(cost)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        if self.dtype is not None and isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != self.dtype:
            out = out.to(self.dtype)
        if self.event_ndim is not None:
            expected = x.shape[: x.dim() - self.event_ndim]
            if not isinstance(out, torch.Tensor) or out.shape != expected:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ContractError(
                    f"{self.name} returned {got} for samples of shape {tuple(x.shape)}; it must return one value "
                    f"per sample, shape {tuple(expected)} (the samples' shape without the event's "
                    f"{self.event_ndim} trailing dimension(s))")
        return out

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


def parameter_dtype(dist: D.Distribution) -> torch.dtype | None:
    """The floating dtype of a distribution's parameters (its ``params`` dict, else its
    ``arg_constraints``), ``None`` when it has none."""
    params = getattr(dist, "params", None)
    values = list(params.values()) if isinstance(params, dict) else [
        dist.__dict__.get(name) for name in getattr(dist, "arg_constraints", {})]
    for value in values:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.dtype
    return None


def capabilities(dist: D.Distribution, cost: Cost | None = None) -> frozenset[str]:
    """What a distribution (and cost) offer to estimators: ``rsample``, ``continuous`` or
    ``discrete``, the family name (``gaussian``, ``bernoulli``, ``categorical``) when it is one
    we know, ``exact_expectation`` when the cost knows its expectation, ``separable_cost`` when it
    is a sum over coordinates, and whatever a custom distribution lists in its ``capabilities``
    attribute (e.g. ``sequence_lengths``)."""
    caps = {"discrete" if dist.support.is_discrete else "continuous"}
    if dist.has_rsample:
        caps.add("rsample")
    family = family_of(dist)
    if family is not None:
        caps.add(family.name)
    caps |= set(getattr(dist, "capabilities", ()))
    if cost is not None and cost.has_expectation:
        caps.add("exact_expectation")
    if cost is not None and cost.elementwise is not None:
        caps.add("separable_cost")
    return frozenset(caps)


def distribution_params(dist: D.Distribution) -> dict[str, torch.Tensor]:
    """The tensors a ``torch.distributions`` distribution was built from (``loc``/``scale``,
    ``logits`` or ``probs``), for estimators that need per-sample scores."""
    base = base_distribution(dist)
    params = getattr(base, "params", None)  # custom distributions may say so themselves
    if isinstance(params, dict):
        return params
    return {k: base.__dict__[k] for k in base.arg_constraints if k in base.__dict__}


def linear_surrogate(pairs, batch_ndim: int) -> torch.Tensor:
    """``sum <g.detach(), p>`` over ``(g, p)`` pairs, per batch entry (the first ``batch_ndim``
    dimensions; the others are summed): its gradient with respect to each ``p`` is ``g``. For
    estimators that form the gradient with respect to the distribution's parameters themselves
    (measure-valued, ARM, ...)."""
    total = 0
    for g, p in pairs:
        prod = g.detach() * p
        total = total + (prod.reshape(*prod.shape[:batch_ndim], -1).sum(-1) if prod.dim() > batch_ndim else prod)
    return total


class Estimator(Configurable):
    """Base class: one signature for every estimator.

    Subclasses set ``name``, ``options_spec`` (validated by :class:`~estimators.options.Configurable`),
    ``requires`` (capabilities the distribution must offer), ``families``, ``evals_per_sample``
    (evaluations of the cost behind one sample), ``min_samples`` and ``biased``, and implement
    :meth:`surrogate`.
    """

    kind = "estimator"
    requires: ClassVar[frozenset[str]] = frozenset()
    families: ClassVar[frozenset[str] | None] = None  # if set, the distribution must be one of these
    evals_per_sample: ClassVar[int] = 1
    min_samples: ClassVar[int] = 1
    biased: ClassVar[bool] = False  # declared biased: its bias is measured, not expected to vanish
    stateful: bool = False  # keeps state between consecutive estimates (see init_state)

    def conforms_to(self) -> str:
        """The library and version whose own functions compute this configuration, as a conformance
        test checks (e.g. ``verl 0.9.1: ...``); empty where none does."""
        return ""

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

    def evals_per_estimate(self, n_samples: int, dist: D.Distribution | None = None) -> int:
        """Evaluations of the cost behind one estimate (``dist``: one replicate's distribution)."""
        return self.evals_per_sample * n_samples

    def elements_per_sample(self, dist: D.Distribution, cost: Cost | None = None) -> int:
        """Tensor elements one sample touches per entry of the distribution's batch (what the
        harness's chunks are sized by, times the batch entries of one estimate: prompts, images): by
        default the event's size times the evaluations of f per sample."""
        event = max(1, math.prod(dist.event_shape))
        return max(1, self.evals_per_estimate(1, dist)) * event

    def init_state(self) -> Any:
        """State carried from one estimate to the next (an EMA baseline); ``None`` if stateless."""
        return None

    def prepare(self, dist: D.Distribution, cost: Cost, n_samples: int, sampler, state: Any, fresh: bool) -> None:
        """Called by the harness before it measures at a fixed theta (``dist``: one replicate per
        run; ``fresh``: the state was just created). An estimator that learns (RELAX) trains its
        state here, from ``sampler``'s own stream, and freezes it. Nothing by default."""

    def memory_steps(self) -> int:
        """How many consecutive estimates the state links (0 when stateless): the harness makes
        the batches of its batch-means standard errors many times longer than this."""
        return 0

    def surrogate(self, dist: D.Distribution, cost: Cost, n_samples: int, sampler, state: Any,
                  params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Surrogate loss with one entry per batch entry of ``dist`` (its gradient is the estimate).

        ``sampler`` (:class:`estimators.sampling.Sampler`) draws from the job's random stream, so
        estimators that share a seed see the same samples. ``state`` is what :meth:`init_state`
        returned and is updated in place; batch dimension 0 holds consecutive steps, in order.
        ``params`` are the tensors the distribution was built from, for estimators that need
        per-sample scores.
        """
        raise NotImplementedError

    def __call__(self, dist: D.Distribution, cost: Cost | Callable, n_samples: int = 1, *, state: Any = None,
                 generator: torch.Generator | None = None, params: dict[str, torch.Tensor] | None = None
                 ) -> torch.Tensor:
        """One estimate for your own training loop: the surrogate loss, with ``dist``'s batch shape,
        whose gradient is the estimate (call ``.backward()`` on it, or on its sum or mean).

        ``cost`` is any function of the samples (``[n_samples, *batch, *event] -> [n_samples,
        *batch]``), to be *minimised* (pass ``-reward`` to maximise a reward). Samples come from
        ``generator`` (default: torch's global generator). A stateful estimator needs
        ``state=estimator.init_state()`` kept across steps (it is updated in place, one state per
        entry of ``dist``'s batch shape; every call is one step).
        """
        if not isinstance(dist, D.Distribution):
            raise TypeError(f"dist must be a torch.distributions.Distribution, got {type(dist).__name__}")
        cost = Cost.wrap(cost)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples={n_samples!r} is not allowed: must be an integer >= 1")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        cost = cost.checked(dist)
        if self.stateful and state is None:
            raise ValueError(f"{self.describe()} keeps state between steps: create it once with "
                             f"state = estimator.init_state() and pass state=state at every step")
        self.check(dist, n_samples, cost)
        # One step: a leading step dimension of size 1, so the batch's own entries are independent.
        stepped = dist.expand(torch.Size((1,)) + dist.batch_shape)
        if params is None:
            params = distribution_params(stepped)
        out = self.surrogate(stepped, cost, n_samples, Sampler(generator), state, params=params)[0]
        if not out.requires_grad:  # a cost that does not depend on the samples: an estimate of 0, still a loss
            out = out + sum(0.0 * p.sum() for p in params.values() if p.requires_grad)
        if not bool(torch.isfinite(out).all()):
            warnings.warn(f"{self.describe()}: the loss is not finite ({cost.name} gave inf or nan for some "
                          "samples, or the estimate overflowed)", RuntimeWarning, stacklevel=2)
        return out
