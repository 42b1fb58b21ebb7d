"""Problems with exact gradients, registered by name (``problem=NAME``; the class's defaults are its config).

Every module of this package is imported here (so its ``@register_problem`` runs): adding a
problem is one module, with no import list to edit and no yaml.
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
