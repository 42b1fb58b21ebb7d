"""One measuring job, from its configuration to its tidy rows: what ``python -m bench.run`` runs
per job and what :func:`bench.measure` runs in-process, so both give the same columns.

A configuration is a nested dict: the root keys of ``conf/base.yaml`` plus the groups
``problem`` and ``estimator`` (``{"name": ..., **options}`` or ``{"_target_": ..., **options}``).
"""

from __future__ import annotations

import platform
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from estimators import Estimator, NotApplicable, build_estimator
from estimators.base import ContractError
from estimators.options import ConfigError

from .config import job_spec, recorded
from .exact_variance import exact_variance
from .harness import Harness
from .problems import Problem, build_problem
from .sweeps import identity
from .results import JOB_FILE, noisy_timing, order_columns, write_atomic
from .timing import time_one_estimate


def device_name(device: str) -> str:
    """The CUDA device's name, or the CPU's model, for the results' environment columns."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_job(config: dict[str, Any], problem: Problem, estimator: Estimator) -> list[dict]:
    """The measured rows of one job (raises ConfigError/NotApplicable for a job that cannot run)."""
    spec = job_spec(config)
    harness = Harness(problem, estimator, n_samples=spec.n_samples, device=spec.device, dtype=spec.dtype,
                      chunk_elements=spec.chunk_elements, compile=spec.compile, sampling=spec.sampling)
    m = harness.run(spec.n_replicates, spec.seed, progress=spec.progress)
    latency = (time_one_estimate(problem, estimator, spec.n_samples, spec.device, spec.dtype,
                                 spec.timing_min_run_time, spec.seed + 1, sampling=spec.sampling)
               if spec.timing else None)
    evals = harness.evals_per_estimate
    exact = exact_variance(problem, estimator, spec.n_samples, spec.n_replicates) or {}
    message = m.message()
    if latency and noisy_timing(latency.median_s, latency.iqr_s):
        note = (f"noisy timing: its quartiles are {latency.iqr_s / latency.median_s:.0%} of the median apart "
                "(another process on the machine?); time_per_estimate_s is not a cost comparison")
        message = f"{message}; {note}" if message else note
    return [{
        "problem": problem.name, "estimator": estimator.name, "label": estimator.describe(),
        "status": m.status(), "message": message, **{k: v for k, v in r.items() if k != "run"},
        "exact_variance": exact.get(r["param"], float("nan")) if r["row_kind"] != "component" else float("nan"),
        "evals_per_estimate": evals, "work_variance": r["variance"] * evals, **problem.info(),
        "time_per_estimate_s": latency.median_s if latency else float("nan"),
        "time_iqr_s": latency.iqr_s if latency else float("nan"),
        "time_q1_s": latency.q1_s if latency else float("nan"),
        "time_q3_s": latency.q3_s if latency else float("nan"),
        "harness_s": m.seconds, "n_nonfinite": m.n_nonfinite[0],
    } for r in m.rows]


def run_config(config: dict[str, Any], out_dir: Path | str | None = None, job: int | str = 0, *,
               problem: Problem | None = None, estimator: Estimator | None = None,
               raise_errors: bool = False) -> pd.DataFrame:
    """Run one job and return its rows (written to ``out_dir/result.csv`` when given). A job that
    cannot run is a row with its ``status`` and one-line ``message``, unless ``raise_errors``.
    ``problem``/``estimator`` instances replace the config's groups; the columns then hold their
    names and options (every option, as a yaml preset lists them)."""
    config = dict(config)
    error = None
    try:
        problem = problem if problem is not None else build_problem(config["problem"])
        estimator = estimator if estimator is not None else build_estimator(config["estimator"])
    except (ConfigError, NotApplicable) as e:
        if raise_errors:
            raise
        error = e
    for group, component in (("problem", problem), ("estimator", estimator)):
        given = config[group] if isinstance(config[group], dict) else {"name": config[group]}
        if isinstance(component, (Problem, Estimator)):
            target = {"_target_": given["_target_"]} if "_target_" in given else {}
            config[group] = {"name": component.name, **target, **component.options()}
        else:
            config[group] = {"name": given.get("name", given.get("_target_", "")), **given}
    label = ({"label": estimator.describe(), "conforms_to": estimator.conforms_to()}
             if isinstance(estimator, Estimator) else {})
    base = {"job": job, **recorded(config), **label, "torch_version": torch.__version__,
            "device_name": device_name(str(config.get("device", "cpu"))), "threads": torch.get_num_threads(),
            "job_dir": str(out_dir) if out_dir is not None else "", "config_hash": identity(config)[0]}
    if error is not None:
        return _finish(pd.DataFrame([{**base, "status": "invalid_config", "message": str(error).splitlines()[0]}]),
                       out_dir)
    try:
        rows = [{**base, **r} for r in measure_job(config, problem, estimator)]
    except (ConfigError, NotApplicable, ContractError) as e:
        if raise_errors:
            raise
        status = "not_applicable" if isinstance(e, NotApplicable) else "invalid_config"
        rows = [{**base, "status": status, "message": str(e).splitlines()[0]}]
    except Exception as e:  # a bug or a runtime failure: keep the traceback beside the result
        if raise_errors:
            raise
        where = ""
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / "error.log").write_text(traceback.format_exc())
            where = f" (traceback in {Path(out_dir) / 'error.log'})"
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        rows = [{**base, "status": "error", "message": f"{type(e).__name__}: {first}{where}"}]
    return _finish(pd.DataFrame(rows), out_dir)


def _finish(df: pd.DataFrame, out_dir) -> pd.DataFrame:
    df = order_columns(df)
    if out_dir is not None:
        write_atomic(df, Path(out_dir) / JOB_FILE)
    return df
