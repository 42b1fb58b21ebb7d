"""Entry point: ``python -m bench.train [key=value ...]`` (one job) or ``-m`` (a sweep): estimators
inside a training loop (:mod:`bench.training`), on the same ``conf/`` (``conf/train.yaml`` adds
``steps``, ``n_seeds``, ``log_every``, ``variance_every``, ``variance_replicates`` and the
``optimizer`` group, ``sgd`` or ``adam``).

Each job writes, in its folder, ``result.csv`` (one row per run: final status, objective, gap),
``curves.csv`` (one row per run and logged step) and ``variance_curves.csv`` (one row per run,
measured step and parameter); a sweep gathers each of them at its root. Errors are caught inside
the job and recorded as its ``status`` and ``message``; ``resume=true`` keeps jobs whose complete
files exist.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig

from estimators import NotApplicable, build_estimator
from estimators.options import ConfigError

from .cli import entry, job_context
from .config import CONF_DIR, job_spec, recorded
from .jobs import device_name
from .problems import build_problem
from .sweeps import identity
from .results import (CURVES_FILE, JOB_FILE, SWEEP_FILE, VARIANCE_FILE, mean_with_interval, order_columns,
                      swept_columns, value_text, write_atomic)
from .run import job_config, prepare_job, swept_overrides
from .training import train, train_spec

log = logging.getLogger(__name__)


def run_training(config: dict, out_dir: Path | None = None, job: int | str = 0) -> dict[str, pd.DataFrame]:
    """One training job from its configuration: ``{"result": ..., "curves": ..., "variance": ...}``
    tables with the configuration in columns (written to ``out_dir`` when given). Never raises for a
    bad job: its status and message go into the result row."""
    base = {"job": job, **recorded(config), "torch_version": torch.__version__,
            "device_name": device_name(str(config.get("device", "cpu"))), "threads": torch.get_num_threads(),
            "job_dir": str(out_dir) if out_dir is not None else "", "config_hash": identity(config)[0]}
    tables = {"result": pd.DataFrame(), "curves": pd.DataFrame(), "variance": pd.DataFrame()}
    try:
        spec, tspec = job_spec(config), train_spec(config)
        problem, estimator = build_problem(config["problem"]), build_estimator(config["estimator"])
        base.update(problem=problem.name, estimator=estimator.name, label=estimator.describe(), conforms_to=estimator.conforms_to())
        done = train(problem, estimator, dict(config["optimizer"]), n_samples=spec.n_samples, steps=tspec.steps,
                     n_seeds=tspec.n_seeds, log_every=tspec.log_every, variance_every=tspec.variance_every,
                     variance_replicates=tspec.variance_replicates, seed=spec.seed, device=spec.device,
                     dtype=spec.dtype, chunk_elements=spec.chunk_elements, sampling=spec.sampling)
        tables = {"result": done.summary, "curves": done.curves, "variance": done.variance}
        tables = {k: order_columns(v.assign(**{c: base[c] for c in base if c not in v})) if len(v) else v
                  for k, v in tables.items()}
    except (ConfigError, NotApplicable) as e:
        status = "not_applicable" if isinstance(e, NotApplicable) else "invalid_config"
        tables["result"] = order_columns(pd.DataFrame([{**base, "status": status,
                                                        "message": str(e).splitlines()[0]}]))
    if out_dir is not None:
        for key, name in (("curves", CURVES_FILE), ("variance", VARIANCE_FILE), ("result", JOB_FILE)):
            write_atomic(tables[key], Path(out_dir) / name)  # result.csv last: it marks the job complete
    return tables


def summary(result: pd.DataFrame, overrides: str = "") -> str:
    """One line per job: the final objective and gap over its runs (mean and 95 % interval)."""
    lines = []
    for job, runs in result.groupby("job", sort=False):
        r = runs.iloc[0]
        name = r["label"] if "label" in runs and isinstance(r["label"], str) else r["estimator"]
        head = (f"job {job} ({overrides})" if overrides else
                f"job {job}: {name} on {r['problem']}, n_samples={r['n_samples']}")
        if r["status"] not in ("ok", "diverged") or "final_objective" not in runs:
            lines.append(f"{head}: {r['status']}: {r['message']}")
            continue
        ok = runs[runs["status"] == "ok"]
        obj, gap = ok["final_objective"], ok["final_gap"]
        diverged = int((runs["status"] == "diverged").sum())
        if ok.empty:
            first = int(runs["diverged_step"].min()) if "diverged_step" in runs else "?"
            lines.append(f"{head}: every run diverged ({diverged} of {len(runs)}; the first at step {first}): the "
                         "objective became non-finite or the parameters left their domain")
            continue
        lines.append(f"{head}: after {int(r['final_step']) if len(ok) else 0} steps, objective "
                     f"{mean_with_interval(obj) or float('nan')}"
                     + (f", gap {mean_with_interval(gap)}" if gap.notna().any() else "") + " "
                     f"(mean ± 95 % over {len(ok)} runs), {r['steps_per_s']:.3g} run-steps/s"
                     + (f"; {diverged} of {len(runs)} runs diverged" if diverged else ""))
    return "\n".join(lines)


def training_table(result: pd.DataFrame) -> str:
    """A sweep's training jobs, one row each, with the swept keys as columns (never pooled): the
    final objective and gap (mean ± 95 % t interval over the runs that did not diverge), the runs
    that diverged and the run-steps per second."""
    swept = [c for c in swept_columns(result) if c not in ("estimator", "problem")]
    rows = []
    for job, runs in result.groupby("job", sort=False):
        r = runs.iloc[0]
        row = {"job": job, "problem": r.get("problem", ""),
               "estimator": r["label"] if isinstance(r.get("label"), str) else r.get("estimator", "")}
        row.update({c.split(".", 1)[-1]: value_text(r[c]) if not pd.isna(r[c]) else "" for c in swept})
        if r["status"] in ("ok", "diverged") and "final_objective" in runs:
            ok = runs[runs["status"] == "ok"]
            row.update({"final objective": mean_with_interval(ok["final_objective"]),
                        "final gap": mean_with_interval(ok["final_gap"], ".3g") if ok["final_gap"].notna().any() else "",
                        "diverged": f"{int((runs['status'] == 'diverged').sum())} of {len(runs)}",
                        "run-steps/s": f"{r['steps_per_s']:.3g}", "status": "ok"})
        else:
            row["status"] = f"{r['status']}: {r['message']}"
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    return (table.to_string(index=False) + "\nfinal objective and gap: mean ± 95 % t interval over the runs that "
            "did not diverge")


def curve_table(curves: pd.DataFrame, rows: int = 6) -> str:
    """A short table: the mean exact objective and gap over runs at a few logged steps."""
    steps = sorted(curves["step"].unique())
    pick = [steps[round(i * (len(steps) - 1) / (rows - 1))] for i in range(min(rows, len(steps)))]
    table = curves[curves["step"].isin(pick)].groupby("step").agg(
        objective=("objective", "mean"), gap=("gap", "mean"), grad_cosine=("grad_cosine", "mean"),
        evals=("evals", "first"), time_s=("time_s", "first"), runs=("run", "nunique"))
    return table.to_string(float_format=lambda v: f"{v:.4g}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> str:
    ctx = job_context()
    out_dir, single, job = ctx.out_dir, ctx.single, ctx.job
    try:
        previous, note = prepare_job(cfg, out_dir, ctx.sweep_dir, job)
        if previous is not None and (out_dir / CURVES_FILE).is_file():
            result, resumed = previous, True
        else:
            tables = run_training(job_config(cfg), out_dir, job)
            result, resumed = tables["result"], False
    except OSError as e:  # a full disk, a file-size limit: the job's files could not be written
        print(f"error: job {job} could not write its results in {out_dir} ({e.strerror or e}); the other jobs go "
              "on", file=sys.stderr)
        return "error"
    status = str(result["status"].iloc[0])
    failed = status not in ("ok", "diverged")
    if single:
        write_atomic(result, out_dir / SWEEP_FILE)
        if failed:
            print(f"error: {result['message'].iloc[0]}", file=sys.stderr)
        else:
            print(curve_table(pd.read_csv(out_dir / CURVES_FILE)))
            print(summary(result))
        print(f"results: {out_dir / SWEEP_FILE}, {out_dir / CURVES_FILE}")
    else:
        overrides = swept_overrides(ctx.overrides, sys.argv, ctx.sweeper_params)
        line = summary(result, overrides) + (" (resumed: result file kept)" if resumed else "")
        line += f" ({note})" if note else ""
        print(line, flush=True)
        log.info(line)
    return "error" if failed else "ok"


if __name__ == "__main__":
    entry(main, "bench.train", "train")
