"""The registry of estimators by name (what ``conf/estimator/NAME.yaml`` selects)."""

from __future__ import annotations

import inspect
from typing import Any

from .base import ConfigError, Estimator

ESTIMATORS: dict[str, type[Estimator]] = {}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make an estimator available by its ``name``."""
    if cls.name in ESTIMATORS:
        raise ValueError(f"estimator {cls.name!r} registered twice")
    ESTIMATORS[cls.name] = cls
    return cls


def make_estimator(name: str, options: dict[str, Any] | None = None) -> Estimator:
    """Build the estimator ``name`` with its options (``estimator.*`` config keys)."""
    if name not in ESTIMATORS:
        raise ConfigError("estimator", name, f"choose one of {', '.join(sorted(ESTIMATORS))}")
    options = dict(options or {})
    cls = ESTIMATORS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in allowed:
            raise ConfigError(f"estimator.{key}", options[key], f"{name} takes {', '.join(allowed) or 'no options'}")
    return cls(**options)
