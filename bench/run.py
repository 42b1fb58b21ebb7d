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
from . import sweeps
from .config import CONF_DIR
from .jobs import run_config
from .results import JOB_FILE, MEASURED_STATUSES, SWEEP_FILE, is_true, read_table, summary_table, with_se, write_atomic

log = logging.getLogger(__name__)  # to the job's run.log (conf/base.yaml: Hydra's file handler only)

if not OmegaConf.has_resolver("bench_uid"):
    # Cached per config, so the folder name is stable within a run and differs between two runs
    # started in the same second.
    OmegaConf.register_new_resolver("bench_uid", lambda: f"{os.getpid()}-{secrets.token_hex(2)}", use_cache=True)

# Keys that do not change a job's results (a resumed job may differ in them).
def job_config(cfg: DictConfig) -> dict:
    """The job's configuration as a plain nested dict, without Hydra's own keys."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    return config


def prepare_job(cfg: DictConfig, out_dir: Path, sweep_dir: Path, job) -> tuple[pd.DataFrame | None, str | None]:
    """Before a job runs: with ``resume=true`` (or ``retry``), its earlier complete result of the same
    configuration, wherever in the sweep folder it sits (:func:`bench.sweeps.resume`); else (or when
    there is none) ``None``, its folder made ready (another configuration's result there set aside,
    never deleted) and its identity written. The second value is a note for the job's line."""
    config = job_config(cfg)
    mode = cfg.get("resume", False)
    if mode:
        previous, note = sweeps.resume(sweep_dir, out_dir, config, job, retry=mode == "retry")
        if previous is not None:
            return previous, note
    else:
        aside = sweeps.set_aside_other(Path(sweep_dir), Path(out_dir), config)
        note = f"the result of another configuration this folder held is kept in {aside}" if aside else None
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    sweeps.write_identity(out_dir, config)
    return None, note


def run_job(cfg: DictConfig, out_dir: Path | str, job: int | str = 0, sweep_dir: Path | str | None = None
            ) -> tuple[pd.DataFrame, bool, str | None]:
    """Run one job; never raises for a bad job: the status and message go into the rows. Returns
    the rows, whether they were kept from an earlier run (``resume``) and a note."""
    out_dir = Path(out_dir)
    previous, note = prepare_job(cfg, out_dir, Path(sweep_dir or out_dir), job)
    if previous is not None:
        return previous, True, note
    return run_config(job_config(cfg), out_dir, job), False, note


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
    if "param" not in df or not (df["param"] == "total").any():
        return f"{head}: {r['status']}, but its rows have no total: the result file is incomplete"
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
    try:
        df, resumed, note = run_job(cfg, out_dir, job=ctx.job, sweep_dir=ctx.sweep_dir)
    except OSError as e:  # a full disk, a file-size limit: the job's result could not be written
        print(f"error: job {ctx.job} could not write its result in {out_dir} ({e.strerror or e}); the other jobs go "
              "on", file=sys.stderr)
        return "error"
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
        line += f" ({note})" if note else ""
        print(line, flush=True)
        log.info(line)
    return status


if __name__ == "__main__":
    entry(main, "bench.run", "config")
