"""Results: the one definition of the columns and of every file name, tidy rows (one per job and
parameter, plus ``total``), reading (checked, with dtypes restored once) and writing, and the
summary table. The reports read results through this module only.

Each job writes ``result.csv`` in its own folder (to a temporary name, then renamed, so a killed
job never leaves a file that looks complete). A sweep gathers them into ``results.csv`` at its
root. A job that failed still has a row, with ``status`` and a one-line ``message``. Every
column that is not listed here is a configuration key (``estimator.*``, ``problem.*``, root keys),
so adding a key to ``conf/base.yaml`` adds a column and nothing else.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

JOB_FILE = "result.csv"  # a job's rows (a training job: one row per run)
SWEEP_FILE = "results.csv"  # a sweep's gathered rows
CURVES_FILE = "curves.csv"  # a training job's logged steps (gathered like results.csv)
VARIANCE_FILE = "variance_curves.csv"  # a training job's variance measurements along training
EXACT_CURVES_FILE = "exact_curves.csv"  # a sweep's exact variance along a swept problem key
MANIFEST_FILE = "sweep.json"  # a sweep folder's identity: its jobs, each with its configuration's hash
JOB_IDENTITY_FILE = "job.json"  # a job folder's configuration and its hash
LOCK_FILE = ".sweep.lock"  # held by the sweep under way (bench.sweeps)

# The job's identity and outcome, first; configuration columns follow.
LEADING = ["job", "status", "message", "estimator", "label", "problem", "n_samples", "n_replicates", "seed",
           "device", "dtype"]
# What the harness measures, per parameter row (see bench/statistics.py for the definitions).
MEASURED = [
    "param", "row_kind", "dim", "true_grad_norm", "variance", "variance_se", "exact_variance", "bias", "bias_se",
    "bias_significant", "bias_p_value", "cosine_to_exact", "norm_ratio_to_exact", "update_share", "exact_share",
    "mse",
    "evals_per_estimate", "work_variance", "time_per_estimate_s", "time_iqr_s", "time_q1_s", "time_q3_s",
    "harness_s", "n_nonfinite",
]
# Where it ran.
TRAILING = ["conforms_to", "torch_version", "device_name", "threads", "job_dir", "config_hash"]
STATUSES = ("ok", "nonfinite", "not_applicable", "invalid_config", "error")
MEASURED_STATUSES = frozenset({"ok", "nonfinite"})  # jobs whose rows hold statistics
# The root keys of conf/base.yaml and conf/train.yaml (a test keeps the two lists equal): with the
# groups' columns (problem, estimator, optimizer and their options) they are a job's configuration.
ROOT_KEYS = ("n_samples", "n_replicates", "seed", "device", "dtype", "chunk_elements", "sampling", "compile", "timing",
             "timing_min_run_time", "progress", "resume", "allow_not_applicable", "steps", "n_seeds", "log_every",
             "variance_every", "variance_replicates")
GROUPS = ("problem", "estimator", "optimizer")
BOOLEAN_COLUMNS = ("bias_significant",)  # written as True/False (empty where no test ran)


RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def regeneration_folder(command: str, committed: Path, update_committed: bool) -> Path:
    """Where a command that regenerates committed files (``bench.reference``, ``bench.perf``,
    ``bench.calibrate``) writes: the committed folder only when told ``--update-committed``, else a
    fresh ``results/runs/COMMAND/DATE_TIME`` (git-ignored), so running a README command never changes
    a file the tests compare the README with."""
    if update_committed:
        return committed
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return RESULTS_DIR / "runs" / command / f"{stamp}_{os.getpid()}"


def config_columns(df: pd.DataFrame) -> list[str]:
    """The columns of ``df`` that are configuration: the groups, their options and the root keys."""
    return [c for c in df.columns if c in ROOT_KEYS or c in GROUPS or c.split(".", 1)[0] in GROUPS and "." in c]


def swept_problem_keys(df: pd.DataFrame) -> list[str]:
    """Numeric problem keys that vary within one problem (e.g. ``problem.k``)."""
    return [c for c in df.columns if c.startswith("problem.") and pd.api.types.is_numeric_dtype(df[c])
            and df.groupby("problem")[c].nunique(dropna=True).max() > 1]


class ResultsError(ValueError):
    """A results file that cannot be used (one line: the file, the row, what is wrong)."""


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


def write_atomic(df: pd.DataFrame | str, path: Path) -> Path:
    """``df`` (a table, or text) written to a temporary name and renamed, so a reader never sees half
    a file; the temporary file is removed if the write fails (a full disk), and the error raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(df, str):
            tmp.write_text(df)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_manifest(sweep_dir: str | Path) -> dict | None:
    """A sweep folder's manifest (``sweep.json``: its jobs and their overrides, and once the sweep
    ended each job's configuration hash), or ``None`` (a folder from before manifests, a file)."""
    file = Path(sweep_dir) / MANIFEST_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f"{file}: not a readable manifest ({e})") from None


def missing_jobs(folder: str | Path, df: pd.DataFrame) -> str | None:
    """What a sweep's gathered table lacks or holds twice, against its manifest and job folders (one
    line), or ``None``: the table is the whole sweep (or the folder has no manifest to check by)."""
    manifest = read_manifest(folder)
    if manifest is None or "job" not in df:
        return None
    listed = [str(job["job"]) for job in manifest["jobs"]]
    rows = df.drop_duplicates(["job", "param"] if "param" in df else ["job", "run"] if "run" in df else ["job"])
    counts = df.groupby(df["job"].astype(str)).size()
    unique = rows.groupby(rows["job"].astype(str)).size()
    duplicated = sorted((j for j in counts.index if counts[j] > unique[j]), key=_natural)
    absent = [j for j in listed if j not in counts.index]
    foreign = sorted((j for j in counts.index if j not in listed), key=_natural)
    parts = []
    if absent:
        complete = [j for j in absent if (Path(folder) / j / JOB_FILE).is_file()]
        parts.append(f"lacks job(s) {', '.join(absent)} of the {len(listed)} the sweep ran"
                     + (f" (the folders of {', '.join(complete)} hold complete results: run the sweep again with "
                        "resume=true to gather them)" if complete else ""))
    if duplicated:
        parts.append(f"holds job(s) {', '.join(duplicated)} more than once")
    if foreign:
        parts.append(f"holds job(s) {', '.join(foreign)} that the sweep's manifest does not list")
    return "; ".join(parts) or None


def _natural(text: str):
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def gather(sweep_dir: Path, file_name: str = JOB_FILE) -> pd.DataFrame:
    """The job files named ``file_name`` of a sweep: the jobs its manifest lists (every job folder
    when there is none), a row for each job without a complete one (killed, crashed, unreadable)."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    overrides = {}
    if manifest is not None:
        job_dirs = [sweep_dir / str(job["job"]) for job in manifest["jobs"]]
        overrides = {str(job["job"]): ", ".join(job.get("overrides", [])) for job in manifest["jobs"]}
    else:
        job_dirs = sorted((p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")
                           if p.parent.parent != sweep_dir), key=_job_key)
    frames = []
    for job_dir in job_dirs:
        file = job_dir / file_name
        problem = None
        if file.is_file():
            try:
                frames.append(read_table(file))
                continue
            except pd.errors.EmptyDataError:  # a job with nothing of this kind (e.g. variance_every=0)
                continue
            except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
                problem = f"its {file_name} is unreadable ({str(e).splitlines()[0]})"
        which = f" ({overrides[job_dir.name]})" if overrides.get(job_dir.name) else ""
        frames.append(pd.DataFrame([{
            "job": job_dir.name, "status": "error", "job_dir": str(job_dir),
            "message": f"job folder {job_dir.name}{which}: "
                       + (problem or f"no {file_name}: the job was killed or crashed"),
        }]))
    if not frames:
        return pd.DataFrame(columns=LEADING + MEASURED + TRAILING)
    return order_columns(pd.concat(frames, ignore_index=True))


def restore_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """The dtypes a CSV loses: the boolean columns (True/False with empty cells) as pandas booleans."""
    for col in BOOLEAN_COLUMNS:
        if col in df:
            df[col] = df[col].map({True: True, False: False, "True": True, "False": False}).astype("boolean")
    return df


def read_table(file: str | Path) -> pd.DataFrame:
    """A CSV this benchmark wrote, with its dtypes restored (no checks: see :func:`read_results`)."""
    return restore_dtypes(pd.read_csv(file))


# The columns every measurement report reads; any other column is a configuration key.
REQUIRED = ["status", "message", "estimator", "problem", "n_samples", "param", "variance", "variance_se",
            "bias", "bias_se", "bias_significant", "mse", "evals_per_estimate", "work_variance",
            "time_per_estimate_s"]
NUMERIC = ["n_samples", "variance", "variance_se", "bias", "bias_se", "mse", "evals_per_estimate",
           "work_variance", "time_per_estimate_s"]


def results_file(path: str | Path, file_name: str = SWEEP_FILE) -> Path:
    path = Path(path)
    file = path / file_name if path.is_dir() else path
    if not file.is_file():
        raise ResultsError(f"{path}: no {file_name} there (give a sweep folder or a {file_name} file)")
    return file


def _check_integrity(file: Path) -> None:
    """Every line complete, with as many fields as the header (rows numbered from 1 after it)."""
    text = file.read_text(errors="replace")
    if not text.strip():
        raise ResultsError(f"{file}: the file is empty")
    if not text.endswith("\n"):
        raise ResultsError(f"{file}: row {text.count(chr(10))} is cut short (no line end): the file is truncated")
    reader = csv.reader(text.splitlines())
    header = next(reader)
    for i, fields in enumerate(reader, start=1):
        if len(fields) != len(header):
            raise ResultsError(f"{file}: row {i} has {len(fields)} of {len(header)} fields: the file is truncated "
                               "or corrupt")


def _check_values(df: pd.DataFrame, file: Path, numeric: list[str]) -> None:
    """Measured rows must have numbers where the harness writes numbers."""
    measured = df["status"].isin(MEASURED_STATUSES | {"diverged"}) if "status" in df else pd.Series(True, df.index)
    if "row_kind" in df:
        measured &= df["row_kind"] != "component"  # a component row carries means and shares only
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = measured & df[col].notna() & values.isna()
        if col in ("variance", "n_samples", "evals_per_estimate"):
            bad |= measured & values.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0]) + 1
            raise ResultsError(f"{file}: row {row} has {col}={df[col].iloc[row - 1]!r}, not a number: the file is "
                               "corrupt")


def read_results(path: str | Path, *, file_name: str = SWEEP_FILE, required: list[str] | None = None,
                 numeric: list[str] | None = None) -> pd.DataFrame:
    """A results file (a sweep folder's ``file_name``, or the file itself), checked: complete lines,
    the ``required`` columns, numbers where the harness writes numbers; dtypes restored, and a
    ``source`` column naming the file. A file cut mid-write or edited out of shape is refused in
    one line (:class:`ResultsError`) naming the file and the row."""
    file = results_file(path, file_name)
    _check_integrity(file)
    try:
        df = read_table(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ResultsError(f"{file}: not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in (REQUIRED if required is None else required) if c not in df.columns]
    if missing:
        raise ResultsError(f"{file}: missing columns {', '.join(missing)} (expected a {file_name} written by "
                           "python -m bench.run or bench.train)")
    _check_values(df, file, NUMERIC if numeric is None else numeric)
    df["source"] = str(file)
    return df


def is_true(value) -> bool:
    """A boolean cell (True, or a pandas boolean True); False for False, NA and anything else."""
    return value is True or (isinstance(value, (bool, np.bool_)) and bool(value))


def _job_key(path: Path):
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, str(path))


QUIET_KEYS = ("resume", "progress", "allow_not_applicable", "timing", "timing_min_run_time")  # never change a number
NOISY_TIMING = 0.5  # interquartile range over the median beyond which a timing is marked as noisy


def swept_columns(df: pd.DataFrame) -> list[str]:
    """The configuration columns whose value differs between the jobs of ``df`` (keys that change
    no number left out)."""
    return [c for c in config_columns(df) if c not in QUIET_KEYS and df[c].nunique(dropna=True) > 1]


def noisy_timing(median, iqr) -> bool:
    """A timing whose quartiles are far apart (another process on the machine, say)."""
    try:
        median, iqr = float(median), float(iqr)
    except (TypeError, ValueError):
        return False
    return math.isfinite(median) and math.isfinite(iqr) and median > 0 and iqr / median > NOISY_TIMING


def time_text(seconds) -> str:
    """A duration in the unit that reads best: ``287 us``, ``12.3 ms``, ``1.25 s``."""
    if seconds is None or pd.isna(seconds):
        return ""
    for unit, scale in (("us", 1e-6), ("ms", 1e-3)):
        if seconds < 1000 * scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds:.3g} s"


SUMMARY_NOTES = ("± is one standard error; bias: the norm of (mean estimate - exact gradient); mse: the mean "
                 "squared error of one estimate; work var: variance x evaluations of f per estimate (the "
                 "comparison at equal work); time/est: median latency of one estimate")


def summary_table(df: pd.DataFrame, reasons: bool = True) -> str:
    """A readable text table: one row per parameter for a single job, one row per job (its
    ``total``) for a sweep, with the swept keys as columns, numbers with their standard errors,
    no column that is empty everywhere, and the columns and markers explained below it. Jobs that
    did not measure (not applicable, a bad value, an error) are rows with their status, and, with
    ``reasons``, their messages below the table."""
    rows = df[df["param"].notna()] if "param" in df else df.iloc[0:0]
    if "row_kind" in rows:
        rows = rows[rows["row_kind"] != "component"]
    several = df["job"].nunique() > 1 if "job" in df else False
    if several:
        rows = rows[rows["param"] == "total"]
    failed = df[~df["status"].isin(MEASURED_STATUSES)].drop_duplicates("job") if "status" in df else df.iloc[0:0]
    if rows.empty and failed.empty:
        return "(no measured rows)"
    swept = [c for c in swept_columns(df) if c not in ("estimator", "problem")]
    both = pd.concat([rows, failed])
    table = pd.DataFrame({"job": both["job"], "problem": both["problem"],
                          "estimator": both["label"] if "label" in both else both["estimator"]})
    for c in swept:
        table[c.split(".", 1)[-1]] = both[c].map(lambda v: "" if pd.isna(v) else value_text(v))
    if "n_samples" not in swept:
        table["n"] = both["n_samples"].map(lambda v: "" if pd.isna(v) else value_text(v))
    if not several:
        table["param"] = both["param"]
    significant = both["bias_significant"].map(is_true) if "bias_significant" in both else False
    table["variance"] = [with_se(v, e) for v, e in zip(both["variance"], both["variance_se"])]
    table["bias"] = [with_se(v, e) + (" *" if sig else "") for v, e, sig in
                     zip(both["bias"], both["bias_se"], significant if len(both) else [])]
    table["mse"] = [value_text(v) if not pd.isna(v) else "" for v in both["mse"]]
    table["work var"] = [value_text(v) if not pd.isna(v) else "" for v in both["work_variance"]]
    iqr = both["time_iqr_s"] if "time_iqr_s" in both else pd.Series(float("nan"), index=both.index)
    noisy = [noisy_timing(v, q) for v, q in zip(both["time_per_estimate_s"], iqr)]
    table["time/est"] = [time_text(v) + (" ~" if n else "") for v, n in zip(both["time_per_estimate_s"], noisy)]
    table["status"] = both["status"]
    table = table.loc[:, [c for c in table if (table[c].astype(str).str.strip() != "").any()]]
    table = table.sort_values("job", key=lambda s: pd.to_numeric(s, errors="coerce"), kind="stable")
    notes = [SUMMARY_NOTES]
    if bool(significant.any()) if hasattr(significant, "any") else False:
        notes.append("* the job's bias test (in phi, family-wise 0.1 %) is significant")
    if reasons:
        notes += [f"job {r['job']}: {r['status']}: {r['message']}" for _, r in failed.iterrows()]
    if any(noisy):
        notes.append(f"~ a noisy timing: its quartiles are more than {NOISY_TIMING:.0%} of the median apart "
                     "(another process on the machine?)")
    return table.to_string(index=False) + "\n" + "\n".join(textwrap.fill(n, 100) for n in notes)


def value_text(value) -> str:
    """A number as a short text: integers without ``.0``, others with four significant digits."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def numeric_sort(values) -> list:
    """Values sorted as numbers where they are numbers (1.5 before 10), else as text."""
    def key(v):
        try:
            return (0, float(v), "")
        except (TypeError, ValueError):
            return (1, 0.0, str(v))
    return sorted(values, key=key)


def t_half_width(values, level: float = 0.95) -> float:
    """Half-width of the Student-t interval for the mean of ``values`` (independent runs) at
    ``level``; nan for fewer than two values. With few runs the normal quantile 1.96 would cover
    far less than ``level`` (about 81 % with 3 runs)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return float("nan")
    return float(special.stdtrit(len(x) - 1, 0.5 + level / 2) * x.std(ddof=1) / math.sqrt(len(x)))


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The Student-t interval for the mean of ``values`` (a seaborn ``errorbar`` callable)."""
    m, h = float(np.nanmean(values)), t_half_width(values, level)
    return m - h, m + h


def mean_with_interval(values, digits: str = ".4g") -> str:
    """``mean ± half-width`` of the 95 % t interval over runs (``""`` with no values, the mean alone
    with one)."""
    values = pd.Series(values, dtype=float).dropna()
    if len(values) == 0:
        return ""
    m = values.mean()
    return f"{m:{digits}}" if len(values) < 2 else f"{m:{digits}} ± {t_half_width(values):.2g}"


def with_se(value, se) -> str:
    """``value ± se`` with the precision the standard error allows (two significant digits of it)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if se is None or (isinstance(se, float) and (math.isnan(se) or se <= 0)):
        return f"{value:.4g}"
    digits = max(0, 1 - int(np.floor(np.log10(abs(se)))))
    if abs(value) < 1e-3 and value != 0 and digits <= 3:  # a value well inside its noise: 0.00047 ± 0.018
        return f"{value:.2g} ± {se:.{digits}f}"
    if abs(value) >= 1e5 or (abs(value) < 1e-3 and value != 0):
        return f"{value:.3e} ± {se:.1e}"
    return f"{value:.{digits}f} ± {se:.{digits}f}"
