"""Monte Carlo gradient estimators, one module per family, registered by name.

Every estimator has one signature, ``surrogate(dist, cost, n_samples, sampler, state, params)``,
and returns a surrogate loss per batch entry whose gradient is the estimate (see
:mod:`estimators.base`); in your own training loop, call the estimator itself:
``loss = estimator(dist, cost, n_samples)``.

Every module of this package is imported here (so its ``@register`` runs): adding an estimator
is one module, with no import list to edit and no yaml (its class defaults are its config:
:mod:`bench.config` registers them with Hydra's ConfigStore).
"""

import importlib
import pkgutil

from .base import Cost, Estimator, NotApplicable, capabilities
from .options import ConfigError
from .registry import ESTIMATORS, build_estimator, make_estimator, register
from .sampling import Sampler

_INFRASTRUCTURE = {"base", "families", "options", "registry", "sampling"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ConfigError",
    "Cost",
    "ESTIMATORS",
    "Estimator",
    "NotApplicable",
    "Sampler",
    "build_estimator",
    "capabilities",
    "make_estimator",
    "register",
]
