"""Entry point: ``python -m bench.run [key=value ...]`` (one job) or ``python -m bench.run -m ...``
(a Hydra sweep). Configs live in the top-level ``conf/``; ``--config-dir DIR`` adds a folder of
your own (``DIR/problem/NAME.yaml``, ``DIR/estimator/NAME.yaml`` with a ``_target_``).

Each job measures one estimator on one problem (:func:`bench.jobs.run_config`) and writes
``result.csv`` in its folder; errors are caught inside the job and recorded as its ``status`` and
``message`` (Hydra would skip the end-of-sweep callback if a job raised). :mod:`bench.callbacks`
gathers a sweep's ``results.csv`` and sets a non-zero exit status when a job was not ``ok``.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from .cli import entry, job_context
from .config import CONF_DIR, recorded
from .jobs import run_config
from .results import JOB_FILE, MEASURED_STATUSES, SWEEP_FILE, is_true, read_table, summary_table, with_se, write_atomic

log = logging.getLogger(__name__)  # to the job's run.log (conf/base.yaml: Hydra's file handler only)

if not OmegaConf.has_resolver("bench_uid"):
    # Cached per config, so the folder name is stable within a run and differs between two runs
    # started in the same second.
    OmegaConf.register_new_resolver("bench_uid", lambda: f"{os.getpid()}-{secrets.token_hex(2)}", use_cache=True)

# Keys that do not change a job's results (a resumed job may differ in them).
NOT_RESULT_KEYS = ("resume", "progress", "allow_not_applicable")


def job_config(cfg: DictConfig) -> dict:
    """The job's configuration as a plain nested dict, without Hydra's own keys."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    return config


def previous_result(out_dir: Path, config: dict, file_name: str = JOB_FILE) -> pd.DataFrame | None:
    """The job's complete result file from an earlier run of the same configuration, if any.
    (Result files are written under a temporary name and renamed, so one that exists is complete.)"""
    file = out_dir / file_name
    if not file.is_file():
        return None
    try:
        previous = read_table(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    row = previous.iloc[0]
    for key, value in recorded(config).items():
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
    config = job_config(cfg)
    if cfg.get("resume", False):
        previous = previous_result(out_dir, config)
        if previous is not None:
            return previous.assign(resumed=True)
    return run_config(config, out_dir, job).assign(resumed=False)


# Overrides that do not change a job's numbers, left out of its one-line description.
QUIET_KEYS = ("timing", "timing_min_run_time", "progress", "resume", "allow_not_applicable")


def swept_overrides(task: list[str], argv: list[str] | None = None, sweeper_params=None) -> str:
    """The job's own values of the keys the sweep varies (``estimator=arm, n_samples=4``): keys
    with several values on the command line or in the experiment's sweeper; all of the job's
    overrides when those are not known (a launcher's worker process)."""
    swept = set(sweeper_params or ())
    for arg in (argv or [])[1:]:
        if "=" in arg and not arg.startswith("-"):
            key, value = arg.split("=", 1)
            if "," in value or value.startswith(("range(", "choice(", "glob(", "interval(")):
                swept.add(key.lstrip("+~"))
    chosen = []
    for item in task:
        key = item.split("=", 1)[0].lstrip("+~")
        if key.startswith("hydra") or key in QUIET_KEYS:
            continue
        if not swept or key in swept:
            chosen.append(item.lstrip("+"))
    return ", ".join(chosen)


def describe_job(df: pd.DataFrame, overrides: str = "") -> str:
    """One line: the job, its swept values, and its outcome (total variance and bias)."""
    r = df.iloc[0]
    name = r["label"] if "label" in df and isinstance(r["label"], str) else r["estimator"]
    head = f"job {r['job']} ({overrides})" if overrides else f"job {r['job']}: {name} on {r['problem']}, n_samples={r['n_samples']}"
    if r["status"] not in MEASURED_STATUSES:
        return f"{head}: {r['status']}: {r['message']}"
    total = df[df["param"] == "total"].iloc[0]
    text = (f"{head}: {r['status']}, total variance {with_se(total['variance'], total['variance_se'])}, "
            f"bias {with_se(total['bias'], total['bias_se'])}" + (" (significant)" if is_true(total["bias_significant"])
                                                                 else ""))
    return text + (f" ({r['message']})" if isinstance(r["message"], str) and r["message"] else "")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> str:
    ctx = job_context()
    out_dir, single = ctx.out_dir, ctx.single
    if not single:
        cfg.progress = False  # in a sweep the one line per job is the progress (bars would interleave)
    df = run_job(cfg, out_dir, job=ctx.job)
    resumed = bool(df.pop("resumed").iloc[0])
    status = str(df["status"].iloc[0])
    if single:
        write_atomic(df, out_dir / SWEEP_FILE)
        if status in MEASURED_STATUSES:
            table = summary_table(df)
            print(table)
            log.info("\n%s", table)
            if df["message"].notna().iloc[0] and str(df["message"].iloc[0]):
                print(f"{status}: {df['message'].iloc[0]}")
        else:
            print(f"error: {df['message'].iloc[0]}", file=sys.stderr)
        print(f"results: {out_dir / SWEEP_FILE}")
    else:
        line = describe_job(df, swept_overrides(ctx.overrides, sys.argv, ctx.sweeper_params))
        line += " (resumed: result file kept)" if resumed else ""
        print(line, flush=True)
        log.info(line)
    return status


if __name__ == "__main__":
    entry(main, "bench.run", "config")
