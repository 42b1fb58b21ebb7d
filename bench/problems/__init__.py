"""Problems with exact gradients, registered by name (one ``conf/problem/NAME.yaml`` each).

Every module of this package is imported here (so its ``@register_problem`` runs): adding a
problem is one module plus its yaml, with no import list to edit.
"""

import importlib
import pkgutil

from .base import Problem
from .registry import PROBLEMS, build_problem, make_problem, register_problem

_INFRASTRUCTURE = {"base", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PROBLEMS", "Problem", "build_problem", "make_problem", "register_problem"]
