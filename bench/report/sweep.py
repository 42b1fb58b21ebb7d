"""What a sweep varies, so that every figure and table shows each swept key (on an axis, as a hue or
as a panel) instead of pooling over it, and numbers printed with their standard errors."""

from __future__ import annotations

import pandas as pd

from ..results import (MEASURED, config_columns as _configuration, numeric_sort, swept_problem_keys,  # noqa: F401
                       value_text, with_se)

# Keys that do not change a job's numbers (or are shown elsewhere): never a panel.
NEUTRAL = {"job", "status", "message", "label", "source", "resume", "progress", "allow_not_applicable", "timing",
           "timing_min_run_time", "torch_version", "device_name", "threads", "job_dir"}


def config_columns(df: pd.DataFrame) -> list[str]:
    """The configuration columns that can change a job's numbers (estimator options are carried
    by the label, so they are left out here)."""
    return [c for c in _configuration(df) if c not in NEUTRAL and c not in MEASURED and not c.startswith("estimator")]


def swept_keys(df: pd.DataFrame, exclude=()) -> list[str]:
    """Configuration columns that take more than one value in ``df``, except ``exclude``; a
    problem's own keys count only when they vary within that problem (``problem.k`` of two
    different problems is not a sweep)."""
    out = []
    for c in config_columns(df):
        if c in exclude:
            continue
        if c.startswith("problem.") and "problem" in df:
            varies = df.groupby("problem")[c].nunique(dropna=True).max() > 1
        else:
            varies = df[c].nunique(dropna=True) > 1
        if varies:
            out.append(c)
    return out


def short_key(key: str) -> str:
    return key.split(".", 1)[1] if key.startswith("problem.") else key


def add_panel(df: pd.DataFrame, base: list[str], exclude=()) -> tuple[pd.DataFrame, list[str], list[str]]:
    """A ``panel`` column: the ``base`` columns' values plus ``key=value`` for every other swept key
    (not in ``exclude``); returns the frame, the panels in order (numbers sorted as numbers) and
    the keys that made panels."""
    extra = swept_keys(df, exclude=set(exclude) | set(base))
    df = df.copy()
    def key_text(c):  # a problem key is named only for the problems whose value of it varies
        varies = (df.groupby("problem")[c].transform("nunique") > 1 if c.startswith("problem.") and "problem" in df
                  else pd.Series(True, index=df.index))
        return [f"{short_key(c)}={value_text(v)}" if ok and not pd.isna(v) else "" for v, ok in zip(df[c], varies)]

    parts = [list(df[c].map(value_text)) for c in base] + [key_text(c) for c in extra]
    df["panel"] = [" | ".join(x for x in p if x) for p in zip(*parts)] if parts else ""
    order_cols = base + extra
    order = (df.sort_values(order_cols, kind="stable")["panel"].drop_duplicates().tolist() if order_cols
             else [""])
    return df, order, extra


