"""The presets: every registered estimator and problem with its class defaults (no yaml needed:
:func:`register_configs` gives Hydra's ConfigStore one config per class, so ``estimator=NAME`` and
``--cfg job`` work from ``options_spec`` alone), plus the yamls in ``conf/estimator/`` and
``conf/problem/`` that name other settings of a class (``rloo``, ``grpo``, ``score_function_loo``,
``reinmax_polynomial_p3``, ...). The README's tables, the reference sweep, the statistical
regression cases and the generic tests are all generated from them, so a new estimator or problem
(one module) is picked up everywhere with no list to edit."""

from __future__ import annotations

import json
from functools import lru_cache

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from estimators import ESTIMATORS, build_estimator, capabilities

from .config import CONF_DIR
from .geometry import replicate, with_runs
from .problems import PROBLEMS, build_problem

REGISTRIES = {"estimator": ESTIMATORS, "problem": PROBLEMS}


def class_defaults(cls) -> dict:
    """A class's config group: ``{"name": ..., **its option defaults}`` (as a yaml would spell them)."""
    options = {}
    for key, spec in cls.options_spec.items():
        value = spec.check(f"{cls.kind}.{key}", spec.default)
        options[key] = list(value) if isinstance(value, tuple) else value
    return {"name": cls.name, **options}


def yaml_names(group: str) -> list[str]:
    """The presets of ``group`` written as yamls in ``conf/GROUP/``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@lru_cache(maxsize=None)
def _load(group: str, name: str) -> tuple:
    return tuple(sorted(OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml")).items()))


def preset(group: str, name: str) -> dict:
    """A preset's config group: ``{"name": ..., **options}`` (or ``_target_``): its yaml's, else the
    registered class's defaults."""
    if (CONF_DIR / group / f"{name}.yaml").is_file():
        return dict(_load(group, name))
    if name in REGISTRIES[group]:
        return class_defaults(REGISTRIES[group][name])
    raise KeyError(f"no {group} preset {name!r}")


def preset_names(group: str) -> list[str]:
    """The presets of ``group`` (``estimator`` or ``problem``), sorted by name: the yamls, and every
    registered class whose defaults no yaml already spells (``group_advantage``'s are ``grpo``'s)."""
    yamls = yaml_names(group)
    spelled = {json.dumps(preset(group, n), sort_keys=True) for n in yamls}
    classes = [n for n, cls in REGISTRIES[group].items()
               if n not in yamls and json.dumps(class_defaults(cls), sort_keys=True) not in spelled]
    return sorted(set(yamls) | set(classes))


def build(group: str, name: str):
    spec = preset(group, name)
    return (build_problem if group == "problem" else build_estimator)(spec)


def register_configs() -> None:
    """One ConfigStore entry per registered class (``estimator/NAME``, ``problem/NAME``), its defaults
    the class's; a yaml of the same name in ``conf/`` would take precedence (none may: a test)."""
    store = ConfigStore.instance()
    for group, registry in REGISTRIES.items():
        for name, cls in registry.items():
            store.store(group=group, name=name, node=class_defaults(cls))


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


register_configs()
