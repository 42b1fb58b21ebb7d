"""Problems with exact gradients, registered by name (one ``conf/problem/NAME.yaml`` each)."""

from . import discrete, gaussian, policy  # noqa: F401  (registers the problems)
from .base import Problem
from .registry import PROBLEMS, make_problem, register_problem

__all__ = ["PROBLEMS", "Problem", "make_problem", "register_problem"]
