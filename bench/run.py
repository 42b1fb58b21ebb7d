"""Entry point: ``python -m bench.run [key=value ...]`` (one job) or ``python -m bench.run -m ...``
(a Hydra sweep). Configs live in the top-level ``conf/``.

Each job measures one estimator on one problem and writes ``result.csv`` in its folder; errors are
caught inside the job and recorded as its ``status`` and ``message`` (Hydra would skip the
end-of-sweep callback if a job raised). :mod:`bench.callbacks` gathers a sweep's ``results.csv``
and sets a non-zero exit status when a job was not ``ok``.
"""

from __future__ import annotations

import os
import platform
import secrets
import sys
import traceback
from pathlib import Path

import hydra
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from estimators import ConfigError, NotApplicable, make_estimator

from .config import job_spec
from .harness import Harness
from .problems import make_problem
from .results import JOB_FILE, SWEEP_FILE, flatten, order_columns, summary_table, write_atomic
from .timing import time_one_estimate

if not OmegaConf.has_resolver("bench_uid"):
    # Cached per config, so the folder name is stable within a run and differs between two runs
    # started in the same second.
    OmegaConf.register_new_resolver("bench_uid", lambda: f"{os.getpid()}-{secrets.token_hex(2)}", use_cache=True)


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


def _options(group: DictConfig) -> dict:
    return {k: v for k, v in OmegaConf.to_container(group, resolve=True).items() if k != "name"}


# Keys that do not change a job's results (a resumed job may differ in them).
NOT_RESULT_KEYS = ("resume", "progress", "allow_not_applicable")


def previous_result(out_dir: Path, config: dict) -> pd.DataFrame | None:
    """The job's complete result file from an earlier run of the same configuration, if any.
    (Result files are written under a temporary name and renamed, so one that exists is complete.)"""
    file = out_dir / JOB_FILE
    if not file.is_file():
        return None
    try:
        previous = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    row = previous.iloc[0]
    for key, value in config.items():
        if key in NOT_RESULT_KEYS:
            continue
        if key not in previous or str(row[key]) != str(value) and not (pd.isna(row[key]) and value is None):
            return None
    return previous


def run_job(cfg: DictConfig, out_dir: Path | str, job: int | str = 0) -> pd.DataFrame:
    """Run one job; never raises for a bad job: the status and message go into the rows. With
    ``resume=true``, a job whose complete result file exists for the same configuration is not
    run again."""
    out_dir = Path(out_dir)
    config = flatten(OmegaConf.to_container(cfg, resolve=True))
    config.pop("hydra", None)
    if cfg.get("resume", False):
        previous = previous_result(out_dir, config)
        if previous is not None:
            return previous.assign(resumed=True)
    base = {"job": job, **config, "torch_version": torch.__version__, "device_name": device_name(str(cfg.device)),
            "threads": torch.get_num_threads(), "job_dir": str(out_dir)}
    try:
        spec = job_spec(cfg)
        problem = make_problem(cfg.problem.name, _options(cfg.problem))
        estimator = make_estimator(cfg.estimator.name, _options(cfg.estimator))
        harness = Harness(problem, estimator, n_samples=spec.n_samples, device=spec.device, dtype=spec.dtype,
                          chunk_elements=spec.chunk_elements, compile=spec.compile)
        m = harness.run(spec.n_replicates, spec.seed, progress=spec.progress)
        latency = (time_one_estimate(problem, estimator, spec.n_samples, spec.device, spec.dtype,
                                     spec.timing_min_run_time, spec.seed + 1) if spec.timing else None)
        evals = harness.evals_per_estimate
        rows = [{
            **base, "label": estimator.describe(), "status": m.status, "message": m.message, **r,
            "evals_per_estimate": evals, "work_variance": r["variance"] * evals,
            "time_per_estimate_s": latency.median_s if latency else float("nan"),
            "time_iqr_s": latency.iqr_s if latency else float("nan"),
            "harness_s": m.seconds, "n_nonfinite": m.n_nonfinite,
        } for r in m.rows]
    except ConfigError as e:
        rows = [{**base, "status": "invalid_config", "message": str(e)}]
    except NotApplicable as e:
        rows = [{**base, "status": "not_applicable", "message": str(e)}]
    except Exception as e:  # a bug or a runtime failure: keep the traceback beside the result
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "error.log").write_text(traceback.format_exc())
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        rows = [{**base, "status": "error", "message": f"{type(e).__name__}: {first} (traceback in {out_dir / 'error.log'})"}]
    df = order_columns(pd.DataFrame(rows))
    write_atomic(df, out_dir / JOB_FILE)
    return df.assign(resumed=False)


def describe_job(df: pd.DataFrame) -> str:
    r = df.iloc[0]
    head = f"job {r['job']}: {r['estimator']} on {r['problem']}, n_samples={r['n_samples']}"
    if r["status"] not in ("ok", "nonfinite"):
        return f"{head}: {r['status']}: {r['message']}"
    total = df[df["param"] == "total"].iloc[0]
    return (f"{head}: {r['status']}, total variance {total['variance']:.4g} ± {total['variance_se']:.2g}, "
            f"bias {total['bias']:.3g} ± {total['bias_se']:.2g}"
            + (f" ({r['message']})" if isinstance(r["message"], str) and r["message"] else ""))


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> str:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    single = hc.mode == RunMode.RUN
    df = run_job(cfg, out_dir, job=0 if single else hc.job.num)
    resumed = bool(df.pop("resumed").iloc[0])
    status = str(df["status"].iloc[0])
    if single:
        write_atomic(df, out_dir / SWEEP_FILE)
        if status in ("ok", "nonfinite"):
            print(summary_table(df))
            if status != "ok":
                print(f"{status}: {df['message'].iloc[0]}")
        else:
            print(f"error: {df['message'].iloc[0]}", file=sys.stderr)
        print(f"results: {out_dir / SWEEP_FILE}")
    else:
        print(describe_job(df) + (" (resumed: result file kept)" if resumed else ""), flush=True)
    return status


if __name__ == "__main__":
    main()
