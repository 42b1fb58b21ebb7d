"""Hydra callbacks: the exit status of a single run; a sweep's identity at its start (its lock, its
manifest, its job folders free: :mod:`bench.sweeps`); and its gathered files and summary at its end
(``results.csv``; for measurement sweeps also ``exact_curves.csv`` where a formula is known, for
training sweeps ``curves.csv`` and ``variance_curves.csv``). A failure to gather or write is one
line and a non-zero exit, never a warning Hydra swallows; the job folders keep every result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from . import sweeps
from .cli import OutputFolder, SweepUnderWay
from .exact_curves import write_exact_curves
from .results import CURVES_FILE, SWEEP_FILE, VARIANCE_FILE, gather, summary_table, swept_columns, write_atomic
from .run import describe_job
from .train import summary, training_table

# Outcomes that are results, not failures: a run that diverged in training is a finding.
GOOD = {"ok", "diverged"}


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(1)


class ResultsCallback(Callback):
    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        job_return = kwargs.get("job_return")
        if job_return is not None and job_return.status.name == "COMPLETED" and job_return.return_value != "ok":
            raise SystemExit(1)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        OutputFolder.path = str(sweep_dir)
        try:
            note = sweeps.acquire_lock(sweep_dir)
        except sweeps.SweepLocked as e:
            _fail(str(e))
        except OSError as e:
            _fail(f"error: {sweep_dir} cannot be written ({e.strerror or e}); choose another hydra.sweep.dir")
        if note:
            print(note, file=sys.stderr)
        jobs = sweeps.expand_jobs(config)
        blocked = [str(sweep_dir / str(i)) for i in range(len(jobs)) if (sweep_dir / str(i)).exists()
                   and not (sweep_dir / str(i)).is_dir()]
        if blocked:
            sweeps.release_lock(sweep_dir)
            _fail(f"error: {blocked[0]} is a file where the sweep needs job {Path(blocked[0]).name}'s folder: move it "
                  "away, or choose another hydra.sweep.dir")
        try:
            sweeps.write_manifest(sweep_dir, jobs)
        except OSError as e:
            sweeps.release_lock(sweep_dir)
            _fail(f"error: {sweep_dir / 'sweep.json'} cannot be written ({e.strerror or e})")
        SweepUnderWay.finish = lambda: self.on_multirun_end(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        SweepUnderWay.finish = None
        try:
            self._end(config, sweep_dir)
        finally:
            sweeps.release_lock(sweep_dir)

    def _end(self, config: DictConfig, sweep_dir: Path) -> None:
        training = "steps" in config
        try:
            manifest = sweeps.complete_manifest(sweep_dir)
            df = gather(sweep_dir)
            path = write_atomic(df, sweep_dir / SWEEP_FILE)
            if training:
                for name in (CURVES_FILE, VARIANCE_FILE):
                    write_atomic(gather(sweep_dir, name), sweep_dir / name)
            else:
                write_exact_curves(sweep_dir, df)
        except (OSError, ValueError) as e:  # a full disk, a file limit, an unwritable folder
            _fail(f"error: the sweep's results could not be gathered into {sweep_dir} ({e}); every job's result is "
                  f"in its folder: run the same command with resume=true to gather them")
        foreign = sweeps.foreign_folders(sweep_dir, manifest)
        if foreign:
            print(f"note: job folders {', '.join(foreign)} of {sweep_dir} are from an earlier, other sweep: kept, "
                  "not gathered", file=sys.stderr)
        training = "steps" in config
        if "submitit" in str(config.hydra.launcher.get("_target_", "")):
            # The jobs ran in other processes, whose lines went to their logs: one line each here.
            swept = swept_columns(df)
            for job, rows in df.groupby("job", sort=False):
                values = ", ".join(f"{c}={rows[c].iloc[0]}" for c in swept if c in rows)
                print(summary(rows, values) if training else describe_job(rows.reset_index(drop=True), values))
        print()
        print(training_table(df) if training else summary_table(df, reasons=False))  # the jobs not ok: below
        jobs = df.drop_duplicates("job")
        bad = jobs[~jobs["status"].isin(GOOD)]
        print(f"\n{len(jobs) - len(bad)} of {len(jobs)} jobs ok; results: {path}")
        if len(bad):
            print(f"{len(bad)} job(s) not ok (their messages are in the table's status and in {path.name}):",
                  file=sys.stderr)
            for _, r in bad.iterrows():
                what = r.get("label") if isinstance(r.get("label"), str) else r.get("estimator")
                where = f" ({what} on {r.get('problem')})" if isinstance(what, str) else ""
                print(f"  job {r['job']}{where}: {r['status']}: {r['message']}", file=sys.stderr)
            tolerated = {"not_applicable"} if config.get("allow_not_applicable", False) else set()
            if not set(bad["status"]) <= tolerated:
                raise SystemExit(1)
