"""Monte Carlo gradient estimators, one module per family, registered by name.

Every estimator has one signature, ``surrogate(dist, cost, n_samples, sampler, state, params)``,
and returns a surrogate loss per replicate whose gradient is the estimate (see
:mod:`estimators.base`). Families: score function (with baselines), reparameterization,
measure-valued, ARM/DisARM/REBAR, relaxations (Gumbel-softmax, straight-through), exact.
"""

from . import bernoulli, exact, measure_valued, relaxed, reparameterization, score_function  # noqa: F401  (registers)
from .base import ConfigError, Estimator, NotApplicable, capabilities
from .registry import ESTIMATORS, make_estimator, register
from .sampling import Sampler

__all__ = [
    "ConfigError",
    "ESTIMATORS",
    "Estimator",
    "NotApplicable",
    "Sampler",
    "capabilities",
    "make_estimator",
    "register",
]
