"""Reading results for a report: sweep folders or ``results.csv`` files, checked before use.

A file cut mid-write or edited by hand is refused with one line naming the file and the row, so a
report never silently covers fewer jobs than the sweep ran.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..results import MEASURED_STATUSES, SWEEP_FILE

# The columns every report reads; any other column is a configuration key.
REQUIRED = ["status", "message", "estimator", "problem", "n_samples", "param", "variance", "variance_se",
            "bias", "bias_se", "bias_significant", "mse", "evals_per_estimate", "work_variance",
            "time_per_estimate_s"]
NUMERIC = ["n_samples", "variance", "variance_se", "bias", "bias_se", "mse", "evals_per_estimate",
           "work_variance", "time_per_estimate_s"]


class ReportError(ValueError):
    """Input the report cannot use (one line, names the file and what is wrong)."""


def results_file(path: str | Path, file_name: str = SWEEP_FILE) -> Path:
    path = Path(path)
    file = path / file_name if path.is_dir() else path
    if not file.is_file():
        raise ReportError(f"{path}: no {file_name} there (give a sweep folder or a {file_name} file)")
    return file


def check_integrity(file: Path) -> None:
    """Every line complete, with as many fields as the header (rows numbered from 1 after it)."""
    text = file.read_text(errors="replace")
    if not text.strip():
        raise ReportError(f"{file}: the file is empty")
    if not text.endswith("\n"):
        last = text.count("\n")
        raise ReportError(f"{file}: row {last} is cut short (no line end): the file is truncated")
    reader = csv.reader(text.splitlines())
    header = next(reader)
    for i, fields in enumerate(reader, start=1):
        if len(fields) != len(header):
            raise ReportError(f"{file}: row {i} has {len(fields)} of {len(header)} fields: the file is truncated "
                              "or corrupt")


def check_columns(df: pd.DataFrame, file: Path, required: list[str]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(f"{file}: missing columns {', '.join(missing)} (expected a {SWEEP_FILE} written by "
                          "python -m bench.run)")


def check_values(df: pd.DataFrame, file: Path, numeric: list[str]) -> None:
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
            raise ReportError(f"{file}: row {row} has {col}={df[col].iloc[row - 1]!r}, not a number: the file is "
                              "corrupt")


def read_results(path: str | Path, *, file_name: str = SWEEP_FILE, required: list[str] | None = None,
                 numeric: list[str] | None = None) -> pd.DataFrame:
    file = results_file(path, file_name)
    check_integrity(file)
    try:
        df = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ReportError(f"{file}: not a readable CSV ({str(e).splitlines()[0]})") from None
    check_columns(df, file, REQUIRED if required is None else required)
    check_values(df, file, NUMERIC if numeric is None else numeric)
    df["source"] = str(file)
    return df


def load(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate the results of sweep folders and/or ``results.csv`` files, checked."""
    frames = [read_results(p) for p in paths]
    if not frames:
        raise ReportError(f"no input: give at least one sweep folder or {SWEEP_FILE}")
    df = pd.concat(frames, ignore_index=True)
    df["bias_significant"] = df["bias_significant"].map(
        {True: True, False: False, "True": True, "False": False}).astype("boolean")
    computed = estimator_labels(df)
    df["label"] = df["label"].astype(object).where(df["label"].notna(), computed) if "label" in df else computed
    return df


def estimator_labels(df: pd.DataFrame) -> pd.Series:
    """The estimator's name plus its options that vary in the data, e.g. ``score_function_baseline (optimal)``."""
    option_cols = [c for c in df.columns if c.startswith("estimator.")]
    labels = df["estimator"].astype(str).copy()
    for name, group in df.groupby("estimator"):
        varying = [c for c in option_cols if group[c].nunique(dropna=True) > 1]
        if not varying:
            continue
        for idx, row in group.iterrows():
            opts = ", ".join(f"{c.split('.', 1)[1]}={row[c]}" for c in varying if not pd.isna(row[c]))
            labels[idx] = f"{name} ({opts})"
    return labels
