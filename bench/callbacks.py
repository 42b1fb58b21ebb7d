"""Hydra callbacks: the exit status of a single run, and the sweep's ``results.csv`` + summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .results import SWEEP_FILE, failed_jobs, gather, summary_table, write_atomic


class ResultsCallback(Callback):
    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        job_return = kwargs.get("job_return")
        if job_return is not None and job_return.status.name == "COMPLETED" and job_return.return_value != "ok":
            raise SystemExit(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        df = gather(sweep_dir)
        path = write_atomic(df, sweep_dir / SWEEP_FILE)
        print()
        print(summary_table(df))
        bad = failed_jobs(df)
        n_jobs = df["job"].nunique()
        print(f"\n{n_jobs - len(bad)} of {n_jobs} jobs ok; results: {path}")
        if len(bad):
            print(f"{len(bad)} job(s) not ok:", file=sys.stderr)
            for _, r in bad.iterrows():
                print(f"  job {r['job']} ({r.get('estimator')} on {r.get('problem')}): {r['status']}: {r['message']}",
                      file=sys.stderr)
            tolerated = {"not_applicable"} if config.get("allow_not_applicable", False) else set()
            if not set(bad["status"]) <= tolerated:
                raise SystemExit(1)
