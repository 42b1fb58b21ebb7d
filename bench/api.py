"""The library's entry points: :func:`measure` one estimator on one problem, :func:`compare` a cross
product, each returning the same tidy table a sweep writes to ``results.csv``."""

from __future__ import annotations

import itertools
from typing import Any, Iterable

import pandas as pd
import torch

from estimators import ESTIMATORS, Estimator, build_estimator

from .config import dtype_name, job_spec, root_defaults
from .harness import Harness
from .jobs import run_config
from .presets import preset, preset_names
from .problems import PROBLEMS, Problem, build_problem
from .results import order_columns

ComponentSpec = "str | dict | Problem | Estimator"


def _config(problem, estimator, **root: Any) -> dict[str, Any]:
    for name, spec, base in (("problem", problem, Problem), ("estimator", estimator, Estimator)):
        if not isinstance(spec, (str, dict, base)):
            raise TypeError(f"{name} must be a registered name, a dict of options with 'name' (or '_target_'), or "
                            f"a {base.__name__} instance; got {type(spec).__name__}")
    defaults = root_defaults()
    unknown = [k for k in root if k not in defaults]
    if unknown:
        raise TypeError(f"unexpected keyword {unknown[0]!r}; the keywords are {', '.join(sorted(defaults))}")
    # The order of conf/config.yaml's defaults list (the root keys, then estimator and problem), so
    # the columns come out in the order a command-line run writes them.
    config = {**defaults, **root, "estimator": _group("estimator", estimator), "problem": _group("problem", problem)}
    config["dtype"] = dtype_name(config["dtype"])
    config["device"] = str(config["device"])
    return config


def _group(group: str, spec):
    """A name is a registered name or a preset (``conf/GROUP/NAME.yaml``, e.g. ``grpo``); a dict
    naming a preset (``{"name": "bnpo", "micro_batches": 4}``) is that preset with its keys changed."""
    registry = PROBLEMS if group == "problem" else ESTIMATORS
    if isinstance(spec, dict):
        name = spec.get("name")
        if isinstance(name, str) and name not in registry and name in preset_names(group):
            return {**preset(group, name), **{k: v for k, v in spec.items() if k != "name"}}
        return spec
    if not isinstance(spec, str):
        return spec
    if spec not in registry and spec in preset_names(group):
        return preset(group, spec)
    return {"name": spec}


def measure(problem: ComponentSpec, estimator: ComponentSpec, *, n_samples: int, n_replicates: int, seed: int = 0,
            device: str | torch.device = "cpu", dtype: torch.dtype | str = torch.float32,
            chunk_elements: int | None = None, compile: bool = False, timing: bool = True,
            timing_min_run_time: float = 0.2, progress: bool = False, sampling: str = "iid") -> pd.DataFrame:
    """Measure one estimator on one problem: the variance, bias, MSE and time of one gradient
    estimate from ``n_samples`` samples, over ``n_replicates`` independent estimates.

    ``problem`` and ``estimator`` are registered names or presets (``"gaussian_quadratic"``, ``"grpo"``), config groups
    (``{"name": "gaussian_quadratic", "k": 2}``, a preset with keys changed: ``{"name": "bnpo",
    "micro_batches": 4}``, or ``{"_target_": "my_module.MyProblem", ...}``) or
    instances (``bench.make_problem("gaussian_quadratic", k=2)``, or your own subclass of
    :class:`bench.Problem` / :class:`bench.Estimator`).

    Returns the tidy table ``python -m bench.run`` writes (one row per parameter tensor plus
    ``total``; the configuration in columns). A bad value raises a :class:`ValueError` naming the
    key (``ConfigError``), an estimator that does not apply raises ``NotApplicable`` (also a
    ``ValueError``) with the reason.
    """
    config = _config(problem, estimator, n_samples=n_samples, n_replicates=n_replicates, seed=seed, device=device,
                     dtype=dtype, chunk_elements=chunk_elements, compile=compile, timing=timing,
                     timing_min_run_time=timing_min_run_time, progress=progress, sampling=sampling)
    return run_config(config, problem=problem if isinstance(problem, Problem) else None,
                      estimator=estimator if isinstance(estimator, Estimator) else None, raise_errors=True)


def estimates(problem: ComponentSpec, estimator: ComponentSpec, *, n_samples: int, n_replicates: int,
              seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype | str = torch.float32,
              chunk_elements: int | None = None, sampling: str = "iid") -> pd.DataFrame:
    """The ``n_replicates`` estimates themselves (the gradient with respect to theta, each from
    ``n_samples`` samples), one row each, a column per coordinate (``mu[0]``, ``fc1.weight[3]``, ...):
    the same numbers :func:`measure`'s statistics are made of, for the same seed."""
    config = _config(problem, estimator, n_samples=n_samples, n_replicates=n_replicates, seed=seed, device=device,
                     dtype=dtype, chunk_elements=chunk_elements, timing=False, sampling=sampling)
    spec = job_spec(config)
    p = problem if isinstance(problem, Problem) else build_problem(config["problem"])
    e = estimator if isinstance(estimator, Estimator) else build_estimator(config["estimator"])
    harness = Harness(p, e, n_samples=spec.n_samples, device=spec.device, dtype=spec.dtype,
                      chunk_elements=spec.chunk_elements, sampling=spec.sampling)
    kept = harness.run(spec.n_replicates, spec.seed, keep_estimates=True).estimates[0].numpy()
    names = [f"{name}[{i}]" for name, value in p.init_params("cpu", spec.dtype).items() for i in range(value.numel())]
    return pd.DataFrame(kept, columns=names)


def compare(problems: ComponentSpec | Iterable, estimators: ComponentSpec | Iterable, *,
            n_samples: int | Iterable[int] = (10,), **keywords: Any) -> pd.DataFrame:
    """The cross product ``problems x estimators x n_samples``, like a sweep but in-process: one
    table, ``job`` numbering the combinations; a pair that cannot run (an inapplicable estimator, a
    bad value) is a row with its ``status`` and ``message``, and the others run. ``keywords`` are
    those of :func:`measure` (``n_replicates`` is required)."""
    as_list = lambda x: [x] if isinstance(x, (str, dict, Problem, Estimator, int)) else list(x)  # noqa: E731
    if "n_replicates" not in keywords:
        raise TypeError("compare() needs n_replicates")
    frames = []
    for job, (p, e, n) in enumerate(itertools.product(as_list(problems), as_list(estimators), as_list(n_samples))):
        config = _config(p, e, n_samples=n, **keywords)
        frames.append(run_config(config, job=job, problem=p if isinstance(p, Problem) else None,
                                 estimator=e if isinstance(e, Estimator) else None))
    return order_columns(pd.concat(frames, ignore_index=True))
