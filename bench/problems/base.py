"""The problem interface: ``theta --encode--> phi --q_phi--> x --cost--> f``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import distributions as D

from estimators.base import ConfigError


def check_number(key: str, value: Any, *, positive: bool = False, integer: bool = False, minimum=None) -> Any:
    """Validate a scalar config value; raise :class:`ConfigError` naming ``key`` otherwise."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ConfigError(key, value, f"must be {kind}")
    if positive and not value > 0:
        raise ConfigError(key, value, f"must be {kind} > 0")
    if minimum is not None and value < minimum:
        raise ConfigError(key, value, f"must be {kind} >= {minimum}")
    if not integer and not torch.isfinite(torch.tensor(float(value))):
        raise ConfigError(key, value, f"must be a finite number")
    return value


class Problem:
    """A stochastic objective ``L(theta) = E_{x ~ q_{encode(theta)}}[cost(x)]`` with its exact value.

    * ``init_params(device, dtype)``: theta, a dict of named tensors (the rows of results).
    * ``encode(theta)``: phi, a dict of distribution parameters; ``identity_encode`` says phi is
      theta itself (no Jacobian needed).
    * ``distribution(phi)``: broadcasts over a leading replicate dimension of every phi tensor.
    * ``cost(x)``: batched over leading sample dimensions; does not depend on theta.
    * ``expected_cost(dist)``: ``E[cost]`` under ``dist``, one value per replicate, in closed form
      or by exact enumeration (``has_exact``), differentiable in the distribution's parameters.
    """

    name: ClassVar[str]
    identity_encode: ClassVar[bool] = False
    has_exact: ClassVar[bool] = True

    def options(self) -> dict[str, Any]:
        """The options that distinguish this problem's jobs (written to results)."""
        return {}

    def init_params(self, device, dtype) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def encode(self, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return theta

    def distribution(self, phi: dict[str, torch.Tensor]) -> D.Distribution:
        raise NotImplementedError

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def expected_cost(self, dist: D.Distribution) -> torch.Tensor:
        raise NotImplementedError

    def exact_objective(self, phi: dict[str, torch.Tensor]) -> torch.Tensor:
        """``E[cost]`` at phi, summed over replicates if phi has a replicate dimension."""
        return self.expected_cost(self.distribution(phi)).sum()
