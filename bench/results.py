"""Results: the one definition of the columns, tidy rows (one per job and parameter, plus
``total``), file I/O and the summary table.

Each job writes ``result.csv`` in its own folder (to a temporary name, then renamed, so a killed
job never leaves a file that looks complete). A sweep gathers them into ``results.csv`` at its
root. A job that failed still has a row, with ``status`` and a one-line ``message``. Every
column that is not listed here is a configuration key (``estimator.*``, ``problem.*``, root keys),
so adding a key to ``conf/base.yaml`` adds a column and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

JOB_FILE = "result.csv"
SWEEP_FILE = "results.csv"

# The job's identity and outcome, first; configuration columns follow.
LEADING = ["job", "status", "message", "estimator", "label", "problem", "n_samples", "n_replicates", "seed",
           "device", "dtype"]
# What the harness measures, per parameter row (see bench/statistics.py for the definitions).
MEASURED = [
    "param", "row_kind", "dim", "true_grad_norm", "variance", "variance_se", "bias", "bias_se",
    "bias_significant", "bias_p_value", "cosine_to_exact", "norm_ratio_to_exact", "update_share", "exact_share",
    "mse",
    "evals_per_estimate", "work_variance", "time_per_estimate_s", "time_iqr_s", "harness_s", "n_nonfinite",
]
# Where it ran.
TRAILING = ["torch_version", "device_name", "threads", "job_dir"]
STATUSES = ("ok", "nonfinite", "not_applicable", "invalid_config", "error")
MEASURED_STATUSES = frozenset({"ok", "nonfinite"})


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """``{"problem": {"name": "x", "mu": 1}}`` -> ``{"problem": "x", "problem.mu": 1}``: a config
    group's name becomes the group's column; lists become their text, so a row is flat."""
    flat = pd.json_normalize(config, sep=".").iloc[0].to_dict() if config else {}
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key.endswith(".name") and key.count(".") == 1:
            key = key[: -len(".name")]
        out[key] = str(list(value)) if isinstance(value, (list, tuple)) else value
    return out


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in LEADING if c in df]
    last = [c for c in MEASURED + TRAILING if c in df]
    middle = [c for c in df.columns if c not in first and c not in last]
    return df[first + middle + last]


def write_atomic(df: pd.DataFrame, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def gather(sweep_dir: Path, file_name: str = JOB_FILE) -> pd.DataFrame:
    """All job files named ``file_name`` under ``sweep_dir``, plus a row for each job folder
    without one."""
    sweep_dir = Path(sweep_dir)
    frames, missing = [], []
    for job_dir in sorted((p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")), key=_job_key):
        if job_dir == sweep_dir:
            continue
        file = job_dir / file_name
        if file.is_file():
            frames.append(pd.read_csv(file))
        else:
            missing.append(job_dir)
    for job_dir in missing:
        frames.append(pd.DataFrame([{
            "job": job_dir.name, "status": "error", "job_dir": str(job_dir),
            "message": f"job folder {job_dir.name} has no {file_name}: the job was killed or crashed",
        }]))
    if not frames:
        return pd.DataFrame(columns=LEADING + MEASURED + TRAILING)
    return order_columns(pd.concat(frames, ignore_index=True))


def _job_key(path: Path):
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, str(path))


def _fmt(value, se=None) -> str:
    if value is None or pd.isna(value):
        return ""
    s = f"{value:.4g}"
    if se is not None and not pd.isna(se):
        s += f" ± {se:.2g}"
    return s


def summary_table(df: pd.DataFrame, rows: Iterable[str] | None = None) -> str:
    """A readable text table of the measured rows (and of failed jobs, one line each)."""
    ok = df[df["param"].notna()] if "param" in df else df.iloc[0:0]
    if rows is not None:
        ok = ok[ok["param"].isin(list(rows))]
    if ok.empty:
        return "(no measured rows)"
    varying = [c for c in df.columns if (c.startswith("estimator.") or c.startswith("problem."))
               and df[c].nunique(dropna=True) > 1]
    keys = ["problem", "param", "n_samples", "estimator"] + varying
    ok = ok.sort_values([k for k in keys if k in ok], kind="stable")
    table = pd.DataFrame({
        "job": ok["job"],
        "problem": ok["problem"],
        "estimator": ok["estimator"],
        **{c.split(".", 1)[1]: ok[c] for c in varying},
        "n": ok["n_samples"],
        "param": ok["param"],
        "variance": [_fmt(v, s) for v, s in zip(ok["variance"], ok["variance_se"])],
        "bias": [_fmt(v, s) + (" *" if b is True or b == "True" else "") for v, s, b in
                 zip(ok["bias"], ok["bias_se"], ok["bias_significant"])],
        "mse": [_fmt(v) for v in ok["mse"]],
        "work_var": [_fmt(v) for v in ok["work_variance"]],
        "time/est": [_fmt(v * 1e6) + " us" if not pd.isna(v) else "" for v in ok["time_per_estimate_s"]],
        "status": ok["status"],
    })
    return table.to_string(index=False)
