"""Reading results for a report: sweep folders or ``results.csv`` files, checked before use by
:func:`bench.results.read_results` (a file cut mid-write or edited by hand is refused with one line
naming the file and the row), plus the sweep's ``exact_curves.csv`` where it has one."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ..results import EXACT_CURVES_FILE, SWEEP_FILE, ResultsError, missing_jobs, read_results, read_table

ReportError = ResultsError  # input the report cannot use


def check_complete(paths: list[str | Path], frames: list[pd.DataFrame], allow_partial: bool) -> list[str]:
    """Refuse (one line) a results file that lacks jobs of its sweep or holds some twice, checked
    against the sweep folder's manifest and job folders; with ``allow_partial``, the notes to show."""
    notes = []
    for path, df in zip(paths, frames):
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        problem = missing_jobs(folder, df)
        if problem:
            line = f"{folder}: its {Path(df['source'].iloc[0]).name if 'source' in df else 'results'} {problem}"
            if not allow_partial:
                raise ReportError(line + "; draw it anyway with --allow-partial")
            notes.append(line)
    return notes


def load(paths: list[str | Path], allow_partial: bool = False) -> pd.DataFrame:
    """Concatenate the results of sweep folders and/or ``results.csv`` files, checked (each against
    its sweep's manifest: :func:`check_complete`)."""
    frames = [read_results(p) for p in paths]
    for note in check_complete(paths, frames, allow_partial):
        print(f"warning: {note}", file=sys.stderr)
    if not frames:
        raise ReportError(f"no input: give at least one sweep folder or {SWEEP_FILE}")
    df = pd.concat(frames, ignore_index=True)
    computed = estimator_labels(df)
    df["label"] = df["label"].astype(object).where(df["label"].notna(), computed) if "label" in df else computed
    return df


def load_exact_curves(paths: list[str | Path]) -> pd.DataFrame:
    """The exact curves written beside the inputs (:mod:`bench.exact_curves`); empty if none."""
    frames = []
    for raw in paths:
        folder = Path(raw) if Path(raw).is_dir() else Path(raw).parent
        if (folder / EXACT_CURVES_FILE).is_file():
            frames.append(read_table(folder / EXACT_CURVES_FILE))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
