"""The problem interface: ``theta --encode--> phi --q_phi--> x --cost--> f``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import distributions as D

from estimators.base import Cost
from estimators.options import Configurable


class Problem(Configurable):
    """A stochastic objective ``L(theta) = E_{x ~ q_{encode(theta)}}[cost(x)]`` with its exact value.

    Options are declared in ``options_spec`` (validated by the base class, see
    :mod:`estimators.options`). A subclass implements:

    * ``init_params(device, dtype)``: theta, a dict of named tensors (the rows of results).
    * ``encode(theta)``: phi, a dict of distribution parameters. It must accept leading *run*
      dimensions on every theta tensor (``[S, *shape]``: independent runs of training) and give phi
      the same leading dimensions. ``identity_encode = True`` says phi is theta itself.
    * ``distribution(phi)``: broadcasts over leading dimensions of every phi tensor.
    * ``cost(x)``: batched over leading sample and batch dimensions; does not depend on theta (a
      floating result of another dtype is cast to the run's, e.g. rewards of integer tokens).
    * ``expected_cost(dist)``: ``E[cost]`` under ``dist``, one value per batch entry, in closed form
      or by exact enumeration, differentiable in the distribution's parameters (set
      ``has_exact = False`` when there is none: the bias columns are then left empty).

    Optional: ``maximize`` (the cost is a reward: training ascends it), ``optimum()`` (the best
    achievable ``E[cost]``, for the training gap), ``in_domain(theta)`` (which runs' parameters
    are still valid, e.g. ``sigma > 0``), ``elementwise_cost`` (``f1`` when the cost is a sum over
    coordinates), ``moment_warning()`` (a reason when the estimates' fourth moment is infinite,
    so no standard error of the variance can hold) and ``curve_metrics(dist)`` (exact functionals of
    the distribution that training logs beside the objective, e.g. a policy's mean completion length;
    ``curve_metrics_at(theta)`` where they need theta, e.g. a VAE's test ELBO).

    Two optional pieces make a latent-variable model (``digits_vae``): ``analytic_cost(dist)``, a
    term of the objective known in closed form and not estimated (the KL to the prior: estimators
    estimate the gradient of ``E[cost]``, training adds this term's exact gradient), and
    ``model_parameters()``, the cost's own parameters (a decoder), fixed while an estimator is
    measured and trained by ``bench.train`` beside theta by their exact gradient (the problem's
    ``expected_cost`` must then be differentiable in them; ``cost`` reads them without a graph).
    """

    kind = "problem"
    identity_encode: ClassVar[bool] = False
    has_exact: ClassVar[bool] = True
    maximize: ClassVar[bool] = False

    def _missing(self, method: str, what: str):
        raise NotImplementedError(f"problem {self.name} ({type(self).__name__}) does not define {method}: {what}")

    def init_params(self, device, dtype) -> dict[str, torch.Tensor]:
        self._missing("init_params(device, dtype)", "theta, a dict of named tensors")

    def encode(self, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return theta

    def distribution(self, phi: dict[str, torch.Tensor]) -> D.Distribution:
        self._missing("distribution(phi)", "a torch.distributions distribution of the parameters phi")

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        self._missing("cost(x)", "one value per sample")

    def expected_cost(self, dist: D.Distribution) -> torch.Tensor:
        self._missing("expected_cost(dist)", "the exact E[cost], differentiable (or set has_exact = False)")

    elementwise_cost = None  # f1 with cost(x) = sum_j f1(x_j), when the cost is separable
    coordinate_replaced_cost = None  # (x, values) -> f with x_j replaced by values_j, for every j (see Cost)

    def cost_function(self) -> Cost:
        """The cost as estimators see it, with what the problem knows about it."""
        return Cost(self.cost, self.expected_cost if self.has_exact else None, self.elementwise_cost,
                    (lambda phi: self.expected_cost(self.distribution(phi))) if self.has_exact else None,
                    self.coordinate_replaced_cost, name=f"problem {self.name}'s cost")

    def phi_components(self) -> dict[str, torch.Tensor]:
        """Named groups of phi's (flattened) coordinates whose share of the mean update the results
        report (e.g. each prompt's); none by default."""
        return {}

    def exact_objective(self, phi: dict[str, torch.Tensor]) -> torch.Tensor:
        """``E[cost]`` at phi, summed over any leading dimensions of phi."""
        return self.expected_cost(self.distribution(phi)).sum()

    def curve_metrics(self, dist: D.Distribution) -> dict[str, torch.Tensor]:
        """Exact functionals of ``dist`` logged along training as columns ``metric.NAME`` of
        ``curves.csv`` (each one value per batch entry, averaged over the problem's own batch, e.g.
        its prompts); none by default."""
        return {}

    def curve_metrics_at(self, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`curve_metrics` from theta (with its run dimension): one value per run, or per entry
        of the distribution's batch."""
        return self.curve_metrics(self.distribution(self.encode(theta)))

    def analytic_cost(self, dist: D.Distribution) -> torch.Tensor | None:
        """A term of the objective in closed form, one value per batch entry, differentiable, that
        estimators do not estimate (``None``: there is none)."""
        return None

    def model_parameters(self) -> dict[str, torch.Tensor]:
        """The cost's own parameters, each with a leading run dimension (1: shared by every run);
        none by default."""
        return {}

    def set_model_parameters(self, params: dict[str, torch.Tensor]) -> None:
        """Give the cost these parameters (``bench.train``: leaves with one entry per run)."""
        self._missing("set_model_parameters(params)", "how its cost takes new parameters")

    def optimum(self) -> float | None:
        """The best achievable ``E[cost]`` (infimum, or supremum when ``maximize``), if known."""
        return None

    def in_domain(self, theta: dict[str, torch.Tensor], n_lead: int = 1) -> torch.Tensor:
        """Per run (the first ``n_lead`` dimensions): are the parameters finite and valid?"""
        total = sum(v.reshape(*v.shape[:n_lead], -1).sum(-1) for v in theta.values())
        return torch.isfinite(total)  # a sum is non-finite when any term is (or when it overflows)

    def moment_warning(self) -> str | None:
        """Why no standard error of the variance can hold here (an infinite fourth moment), if so."""
        return None

    def info(self) -> dict[str, Any]:
        """Extra per-job columns a problem reports (none by default)."""
        return {}
