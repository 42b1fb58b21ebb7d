"""The exact variance along a swept problem key, for the report's figure of variance against that
key (Mohamed et al. 2020, Figures 2-3): computed from a sweep's rows, where a registered formula
(:mod:`bench.exact_variance`) holds, and written beside ``results.csv`` as ``exact_curves.csv``
(by the sweep's callback), so the report only reads files.

One row per point: the configuration columns of the rows it belongs to (all but the swept key),
``label``, ``param``, ``key`` (the swept column), ``x`` and ``exact_variance``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from estimators import ESTIMATORS, ConfigError, make_estimator

from .exact_variance import exact_variance_curve
from .problems import PROBLEMS, make_problem
from .results import (EXACT_CURVES_FILE, MEASURED_STATUSES, config_columns, swept_problem_keys, write_atomic)

GRID_POINTS = 121


def config_options(row: pd.Series, group: str, cls) -> dict:
    """A component's options from a row's ``group.*`` columns, typed as the class declares them."""
    out = {}
    for key, spec in cls.options_spec.items():
        col = f"{group}.{key}"
        if col not in row or pd.isna(row[col]):
            continue
        value, default = row[col], spec.default
        if isinstance(default, bool):
            value = value if isinstance(value, bool) else str(value) == "True"
        elif isinstance(default, int):
            value = int(value)
        elif isinstance(default, float):
            value = float(value)
        elif isinstance(default, (list, tuple)):
            value = [float(v) for v in str(value).strip("[]").split(",")]
        out[key] = value
    return out


def exact_curves(df: pd.DataFrame) -> pd.DataFrame:
    """The exact curves of a sweep's rows along every numeric problem key swept within a problem."""
    ok = df[df["status"].isin(MEASURED_STATUSES) & df["param"].notna()]
    if "row_kind" in ok:
        ok = ok[ok["row_kind"] != "component"]
    parts = []
    for key in swept_problem_keys(ok):
        rows = ok[ok[key].notna()]
        keys = [c for c in config_columns(rows) if c != key] + ["label", "param"]
        for _, group in rows.groupby(keys, dropna=False, sort=False):
            r = group.iloc[0]
            if group[key].nunique() < 2 or r["problem"] not in PROBLEMS or r["estimator"] not in ESTIMATORS:
                continue  # one point, or a component from outside the repository: no curve
            problem = make_problem(r["problem"], config_options(r, "problem", PROBLEMS[r["problem"]]))
            estimator = make_estimator(r["estimator"], config_options(r, "estimator", ESTIMATORS[r["estimator"]]))
            grid = np.linspace(group[key].min(), group[key].max(), GRID_POINTS)
            try:
                ys = exact_variance_curve(problem, estimator, key.split(".", 1)[1], grid, int(r["n_samples"]),
                                          int(r.get("n_replicates", 2)), r["param"])
            except ConfigError:  # a key with a few allowed values (reinmax_polynomial's p): no line between them
                continue
            if ys is not None:
                parts.append(pd.DataFrame({**{c: r[c] for c in keys}, "key": key, "x": grid, "exact_variance": ys}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_exact_curves(folder: str | Path, df: pd.DataFrame) -> Path | None:
    """``exact_curves.csv`` in ``folder`` when the sweep has any curve (else nothing, and any old file removed)."""
    path = Path(folder) / EXACT_CURVES_FILE
    curves = exact_curves(df)
    if curves.empty:
        path.unlink(missing_ok=True)
        return None
    return write_atomic(curves, path)
