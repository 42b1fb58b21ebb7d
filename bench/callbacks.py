"""Hydra callbacks: the exit status of a single run, and a sweep's gathered files + summary
(``results.csv``; for measurement sweeps also ``exact_curves.csv`` where a formula is known, for
training sweeps ``curves.csv`` and ``variance_curves.csv``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .exact_curves import write_exact_curves
from .results import CURVES_FILE, SWEEP_FILE, VARIANCE_FILE, gather, summary_table, swept_columns, write_atomic
from .run import describe_job
from .train import summary, training_table

# Outcomes that are results, not failures: a run that diverged in training is a finding.
GOOD = {"ok", "diverged"}


class ResultsCallback(Callback):
    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        job_return = kwargs.get("job_return")
        if job_return is not None and job_return.status.name == "COMPLETED" and job_return.return_value != "ok":
            raise SystemExit(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        df = gather(sweep_dir)
        path = write_atomic(df, sweep_dir / SWEEP_FILE)
        training = "steps" in config
        if "submitit" in str(config.hydra.launcher.get("_target_", "")):
            # The jobs ran in other processes, whose lines went to their logs: one line each here.
            swept = swept_columns(df)
            for job, rows in df.groupby("job", sort=False):
                values = ", ".join(f"{c}={rows[c].iloc[0]}" for c in swept if c in rows)
                print(summary(rows, values) if training else describe_job(rows.reset_index(drop=True), values))
        print()
        if training:
            for name in (CURVES_FILE, VARIANCE_FILE):
                write_atomic(gather(sweep_dir, name), sweep_dir / name)
            print(training_table(df))
        else:
            write_exact_curves(sweep_dir, df)
            print(summary_table(df, reasons=False))  # the jobs not ok are named below, on stderr
        jobs = df.drop_duplicates("job")
        bad = jobs[~jobs["status"].isin(GOOD)]
        print(f"\n{len(jobs) - len(bad)} of {len(jobs)} jobs ok; results: {path}")
        if len(bad):
            print(f"{len(bad)} job(s) not ok (their messages are in the table's status and in {path.name}):",
                  file=sys.stderr)
            for _, r in bad.iterrows():
                print(f"  job {r['job']} ({r.get('label', r.get('estimator'))} on {r.get('problem')}): {r['status']}: "
                      f"{r['message']}", file=sys.stderr)
            tolerated = {"not_applicable"} if config.get("allow_not_applicable", False) else set()
            if not set(bad["status"]) <= tolerated:
                raise SystemExit(1)
