"""The report's tables: the best estimator at equal work, the jobs that were not ok, the
configuration and the environment."""

from __future__ import annotations

import pandas as pd

from .figures import measured
from .sweep import numeric_sort, swept_keys, value_text, with_se


def best_at_equal_work(df: pd.DataFrame) -> pd.DataFrame:
    """Per problem, parameter, n_samples and every other swept key: the estimator with the lowest
    work_variance among those without significant bias (``exact`` excluded: it does no sampling),
    with its variance and standard error, and the next best."""
    ok = measured(df)
    ok = ok[(ok["estimator"] != "exact") & (ok["evals_per_estimate"] > 0)]
    ok = ok[~ok["bias_significant"].fillna(False).astype(bool)]
    if ok.empty:
        return pd.DataFrame()
    keys = ["problem", "param", "n_samples"] + swept_keys(ok, exclude=["problem", "n_samples"])
    rows = []
    for values, group in ok.groupby(keys, sort=True):
        group = group.sort_values("work_variance")
        best = group.iloc[0]
        row = dict(zip(keys, values))
        row.update({"best estimator": best["label"],
                    "variance": with_se(best["variance"], best["variance_se"]),
                    "evals of f": int(best["evals_per_estimate"]),
                    "work variance": f"{best['work_variance']:.4g}"})
        if len(group) > 1:
            second = group.iloc[1]
            ratio = (f"x{second['work_variance'] / best['work_variance']:.3g}" if best["work_variance"] > 0
                     else "the best has no variance")
            row["next best (work variance ratio)"] = f"{second['label']} ({ratio})"
        else:
            row["next best (work variance ratio)"] = ""
        rows.append(row)
    return pd.DataFrame(rows)  # in the groups' order: problem, parameter, then the swept values ascending


def not_ok_jobs(df: pd.DataFrame) -> pd.DataFrame:
    bad = df[df["status"] != "ok"]
    if "job" in bad:
        bad = bad.drop_duplicates(["source", "job"])
    cols = [c for c in ["job", "estimator", "problem", "n_samples", "status", "message"] if c in bad]
    return bad[cols].reset_index(drop=True)


def environment(df: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in ["torch_version", "device", "device_name", "threads", "dtype"] if c in df]
    env = df[cols].drop_duplicates().reset_index(drop=True)
    return env


def configuration(df: pd.DataFrame) -> pd.DataFrame:
    """Every configuration key and all the values it takes across the jobs (numbers sorted as
    numbers, none left out)."""
    rows = []
    for c in ["estimator", "label", "problem", "n_samples", "n_replicates", "seed", "device", "dtype"] + sorted(
            c for c in df.columns if c.startswith(("estimator.", "problem.", "optimizer"))):
        if c in df:
            values = numeric_sort(df[c].dropna().unique())
            if values:
                rows.append({"key": c, "values": ", ".join(value_text(v) for v in values)})
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    return df.to_markdown(index=False, floatfmt=".4g", missingval="")
