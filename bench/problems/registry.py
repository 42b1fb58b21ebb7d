"""The registry of problems by name (what ``problem=NAME`` selects)."""

from __future__ import annotations

from estimators.registry import Registry

from .base import Problem

_problems: Registry[Problem] = Registry("problem", Problem)
PROBLEMS = _problems.classes
register_problem = _problems.register
make_problem = _problems.make
build_problem = _problems.build
