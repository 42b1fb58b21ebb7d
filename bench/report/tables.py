"""The report's tables: the best estimator at equal work, the jobs that were not ok, the
configuration and the environment."""

from __future__ import annotations

import pandas as pd

from .figures import measured


def best_at_equal_work(df: pd.DataFrame) -> pd.DataFrame:
    """Per problem and parameter (and n_samples): the estimator with the lowest work_variance among
    those without significant bias (``exact`` excluded: it does no sampling)."""
    ok = measured(df)
    ok = ok[(ok["estimator"] != "exact") & (ok["evals_per_estimate"] > 0)]
    ok = ok[~ok["bias_significant"].fillna(False).astype(bool)]
    if ok.empty:
        return pd.DataFrame()
    idx = ok.groupby(["problem", "param", "n_samples"])["work_variance"].idxmin()
    best = ok.loc[idx, ["problem", "param", "n_samples", "label", "work_variance", "variance", "evals_per_estimate"]]
    runner = []
    for i in idx:
        r = ok.loc[i]
        others = ok[(ok["problem"] == r["problem"]) & (ok["param"] == r["param"]) & (ok["n_samples"] == r["n_samples"])
                    & (ok.index != i)]
        runner.append(f"{others.loc[others['work_variance'].idxmin(), 'label']} "
                      f"(x{others['work_variance'].min() / r['work_variance']:.3g})" if len(others) else "")
    best["next best (work_variance ratio)"] = runner
    return best.rename(columns={"label": "best estimator"}).reset_index(drop=True)


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
    """The configuration keys and the values they take across the jobs."""
    rows = []
    for c in ["estimator", "problem", "n_samples", "n_replicates", "seed", "device", "dtype"] + sorted(
            c for c in df.columns if c.startswith(("estimator.", "problem."))):
        if c in df:
            values = sorted(map(str, df[c].dropna().unique()))
            if values:
                rows.append({"key": c, "values": ", ".join(values[:20]) + (" ..." if len(values) > 20 else "")})
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    return df.to_markdown(index=False, floatfmt=".4g", missingval="")
