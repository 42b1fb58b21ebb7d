"""Registries by name: estimators here (what ``conf/estimator/NAME.yaml`` selects), and the same
mechanism for problems in :mod:`bench.problems.registry`."""

from __future__ import annotations

import inspect
from typing import Any, Generic, TypeVar

from .base import ConfigError, Estimator

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes by their ``name``; :meth:`make` builds one from config options (``KIND.key``),
    refusing unknown names and options with a :class:`ConfigError`."""

    def __init__(self, kind: str):
        self.kind = kind
        self.classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        if cls.name in self.classes:
            raise ValueError(f"{self.kind} {cls.name!r} registered twice")
        self.classes[cls.name] = cls
        return cls

    def make(self, name: str, options: dict[str, Any] | None = None) -> T:
        if name not in self.classes:
            raise ConfigError(self.kind, name, f"choose one of {', '.join(sorted(self.classes))}")
        cls = self.classes[name]
        options = dict(options or {})
        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        for key in options:
            if key not in allowed:
                raise ConfigError(f"{self.kind}.{key}", options[key], f"{name} takes {', '.join(allowed) or 'no options'}")
        return cls(**options)


_estimators: Registry[Estimator] = Registry("estimator")
ESTIMATORS = _estimators.classes
register = _estimators.register
make_estimator = _estimators.make
