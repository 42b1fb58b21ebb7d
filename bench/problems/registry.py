"""The registry of problems by name (what ``conf/problem/NAME.yaml`` selects)."""

from __future__ import annotations

import inspect
from typing import Any

from estimators.base import ConfigError

from .base import Problem

PROBLEMS: dict[str, type[Problem]] = {}


def register_problem(cls: type[Problem]) -> type[Problem]:
    if cls.name in PROBLEMS:
        raise ValueError(f"problem {cls.name!r} registered twice")
    PROBLEMS[cls.name] = cls
    return cls


def make_problem(name: str, options: dict[str, Any] | None = None) -> Problem:
    """Build the problem ``name`` with its options (``problem.*`` config keys)."""
    if name not in PROBLEMS:
        raise ConfigError("problem", name, f"choose one of {', '.join(sorted(PROBLEMS))}")
    cls = PROBLEMS[name]
    options = dict(options or {})
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in allowed:
            raise ConfigError(f"problem.{key}", options[key], f"{name} takes {', '.join(allowed) or 'no options'}")
    return cls(**options)
