"""The config presets: one yaml per estimator or problem configuration in ``conf/estimator/`` and
``conf/problem/``. The README's applicability table, the reference sweep, the statistical
regression cases and the generic tests are all generated from them, so a new estimator or
problem (one module, one yaml) is picked up everywhere with no list to edit."""

from __future__ import annotations

from functools import lru_cache

import torch
from omegaconf import OmegaConf

from estimators import build_estimator, capabilities

from .config import CONF_DIR
from .geometry import replicate, with_runs
from .problems import build_problem


def preset_names(group: str) -> list[str]:
    """The presets of ``group`` (``estimator`` or ``problem``), sorted by name."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@lru_cache(maxsize=None)
def _load(group: str, name: str) -> tuple:
    return tuple(sorted(OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml")).items()))


def preset(group: str, name: str) -> dict:
    """A preset's config group: ``{"name": ..., **options}`` (or ``_target_``)."""
    return dict(_load(group, name))


def build(group: str, name: str):
    spec = preset(group, name)
    return (build_problem if group == "problem" else build_estimator)(spec)


@lru_cache(maxsize=None)
def one_replicate(problem_name: str):
    """A problem preset's distribution for one replicate at its initial theta, and its capabilities."""
    problem = build("problem", problem_name)
    with torch.no_grad():
        phi = problem.encode(with_runs(None, problem, "cpu", torch.float32))
        dist = problem.distribution(replicate(phi, 1))
    return dist, capabilities(dist, problem.cost_function())


def applicable_pairs() -> list[tuple[str, str]]:
    """Every (estimator preset, problem preset) whose estimator applies to the problem."""
    return [(e, p) for e in preset_names("estimator") for p in preset_names("problem")
            if build("estimator", e).applies_to(one_replicate(p)[1]) is None]
