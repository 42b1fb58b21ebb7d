"""Registries by name: estimators here (what ``estimator=NAME`` selects), and the same
mechanism for problems in :mod:`bench.problems.registry`.

A component is given as a registered name, a config group (``{"name": ..., **options}``, as in a
yaml file), a group naming a class from anywhere by import path (``{"_target_": "pkg.mod.Class",
**options}``: how problems and estimators outside this repository are run), or an instance.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, Mapping, TypeVar

from .base import Estimator
from .options import ConfigError

T = TypeVar("T")


def import_object(path: str, key: str):
    """``pkg.module.Name`` -> the object, or a one-line :class:`ConfigError` naming ``key``."""
    module_name, _, attr = str(path).rpartition(".")
    if not module_name:
        raise ConfigError(key, path, "must be an import path like my_module.MyClass")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(key, path, f"cannot import {module_name} ({e}); is its folder on the Python path "
                                     "(run from that folder, or set PYTHONPATH)?") from None
    if not hasattr(module, attr):
        raise ConfigError(key, path, f"{module_name} has no {attr}")
    return getattr(module, attr)


class Registry(Generic[T]):
    """Classes by their ``name``; :meth:`make` builds one from options (validated by the class)."""

    def __init__(self, kind: str, base: type):
        self.kind, self.base = kind, base
        self.classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        if cls.name in self.classes:
            raise ValueError(f"{self.kind} {cls.name!r} registered twice")
        self.classes[cls.name] = cls
        return cls

    def make(self, name: str, options: Mapping[str, Any] | None = None, **keywords: Any) -> T:
        """``make("rebar", {"temperature": 0.5})`` or ``make("rebar", temperature=0.5)``."""
        if name not in self.classes:
            raise ConfigError(self.kind, name, f"choose one of {', '.join(sorted(self.classes))}")
        return self.classes[name](**{**dict(options or {}), **keywords})

    def build(self, spec: Any) -> T:
        """An instance from a name, a config group (``name`` or ``_target_``) or an instance."""
        if isinstance(spec, self.base):
            return spec
        if isinstance(spec, str):
            return self.make(spec)
        if isinstance(spec, Mapping):
            options = {k: v for k, v in spec.items() if k not in ("name", "_target_")}
            if "_target_" in spec:
                cls = import_object(spec["_target_"], f"{self.kind}._target_")
                if not (isinstance(cls, type) and issubclass(cls, self.base)):
                    raise ConfigError(f"{self.kind}._target_", spec["_target_"],
                                      f"must name a subclass of {self.base.__module__}.{self.base.__name__}")
                return cls(**options)
            if "name" not in spec:
                raise ConfigError(self.kind, dict(spec), "a config group needs a name (registered) or a _target_ "
                                                        "(an import path)")
            return self.make(spec["name"], options)
        raise TypeError(f"{self.kind} must be a registered name, a dict of options with 'name' or '_target_', "
                        f"or a {self.base.__name__} instance; got {type(spec).__name__}")


_estimators: Registry[Estimator] = Registry("estimator", Estimator)
ESTIMATORS = _estimators.classes
register = _estimators.register
make_estimator = _estimators.make
build_estimator = _estimators.build
