"""The report of a training sweep (``python -m bench.train``): learning curves of the exact
objective against steps, evaluations of f and wall-clock (mean and 95 % interval over runs), the
gradient variance along training, the problem's exact functionals of the policy (its mean
completion length) along training, and the steps, evaluations and seconds each estimator needs to
reach a target gap."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

import sys

from ..results import CURVES_FILE, SWEEP_FILE, VARIANCE_FILE, mean_with_interval, read_results, t_interval
from .loading import check_complete
from .style import facet_grid
from .sweep import short_key, add_panel, swept_keys, value_text

CURVES_REQUIRED = ["job", "run", "step", "objective", "gap", "grad_sq_error", "grad_cosine", "evals", "time_s",
                   "status", "estimator", "problem"]
CURVES_NUMERIC = ["step", "objective", "evals", "time_s"]
TARGET_FRACTION = 0.1  # default target: a tenth of the initial gap


def is_training(path: str | Path) -> bool:
    path = Path(path)
    return (path / CURVES_FILE).is_file() if path.is_dir() else path.name == CURVES_FILE


def load_training(paths: list[str | Path], allow_partial: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curves and the variance curves of training sweep folders, checked as results files are
    (and each sweep's ``results.csv``, one row per run, against its manifest)."""
    curves, variances = [], []
    for raw in paths:
        folder = Path(raw) if Path(raw).is_dir() else Path(raw).parent
        if (folder / SWEEP_FILE).is_file():
            runs = read_results(folder, required=["job", "status"], numeric=[])
            for note in check_complete([folder], [runs], allow_partial):
                print(f"warning: {note}", file=sys.stderr)
        curves.append(read_results(folder, file_name=CURVES_FILE, required=CURVES_REQUIRED, numeric=CURVES_NUMERIC))
        file = folder / VARIANCE_FILE
        if file.is_file() and len(file.read_text().strip().splitlines()) > 1:  # a header alone: none measured
            variances.append(read_results(folder, file_name=VARIANCE_FILE, required=["step", "param", "variance"],
                                          numeric=["step", "variance"]))
    df = pd.concat(curves, ignore_index=True)
    if "label" not in df:
        df["label"] = df["estimator"]
    return df, (pd.concat(variances, ignore_index=True) if variances else pd.DataFrame())


def _y(curves: pd.DataFrame) -> tuple[str, str]:
    if curves["gap"].notna().all() and (curves["gap"] > 0).any():
        return "gap", "gap to the optimum (log scale)"
    return "objective", "exact objective E[f]"


def _learning_curve(curves: pd.DataFrame, x: str, xlabel: str) -> tuple[plt.Figure | None, str]:
    if curves.empty:
        return None, "needs curves.csv rows"
    y, ylabel = _y(curves)
    data, order, extra = add_panel(curves[curves["status"] == "ok"], ["problem"])
    g = facet_grid(data, "panel", hue="label", col_order=order)
    g.map_dataframe(sns.lineplot, x=x, y=y, errorbar=t_interval, estimator="mean", err_kws={"alpha": 0.2},
                    markevery=0.1)
    for name, ax in g.axes_dict.items():
        ax.set(xlabel=xlabel, ylabel=ylabel)
        panel = data[data["panel"] == name]
        if y == "gap":
            ax.set_yscale("log")
            _floor_at_the_means(ax, panel, x, y)
        ends = panel.groupby("label")[x].max()
        if x == "evals" and ends.max() > 10 * ends[ends > 0].min():  # e.g. measure-valued: 2 x dim evaluations
            ax.set_xscale("symlog", linthresh=float(panel.loc[panel[x] > 0, x].min()))
            ax.set_xlim(left=0)
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    g.tight_layout()
    return g.figure, "mean over runs, band: 95 % t interval over runs" + _split_note(extra)


def _split_note(extra: list[str]) -> str:
    return f"; panels also split by {', '.join(extra)}" if extra else ""


def _floor_at_the_means(ax, data: pd.DataFrame, x: str, y: str) -> None:
    """On a log axis, a band whose lower end is at or below 0 (few runs, skewed values) would stretch
    the axis down to its smallest positive point; keep the axis near the mean curves instead (the
    band runs off the bottom)."""
    means = data.groupby(["label", x])[y].mean()
    means = means[means > 0]
    if len(means):
        ax.set_ylim(bottom=max(ax.get_ylim()[0], float(means.min()) / 3))


def fig_curve_steps(curves, variance):
    return _learning_curve(curves, "step", "optimiser step")


def fig_curve_evals(curves, variance):
    return _learning_curve(curves, "evals", "evaluations of f")


def fig_curve_time(curves, variance):
    return _learning_curve(curves, "time_s", "wall-clock of the training steps (s)")


def fig_variance_along_training(curves, variance):
    if variance.empty:
        return None, "needs variance measurements (variance_every > 0)"
    total = variance[variance["param"] == "total"].copy()
    if "label" not in total:
        total["label"] = total["estimator"]
    total, order, extra = add_panel(total, ["problem"])
    g = facet_grid(total, "panel", hue="label", col_order=order)
    g.map_dataframe(sns.lineplot, x="step", y="variance", errorbar=t_interval, err_kws={"alpha": 0.2}, marker="o")
    for name, ax in g.axes_dict.items():
        ax.set(yscale="log", xlabel="optimiser step", ylabel="variance of one estimate at theta_t")
        _floor_at_the_means(ax, total[total["panel"] == name], "step", "variance")
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    return g.figure, ("total over theta, measured by the harness at each run's current theta; mean over runs, 95 % band"
                      + _split_note(extra))


def fig_metric_curves(curves, variance):
    metrics = [c for c in curves if c.startswith("metric.")]
    if not metrics:
        return None, "needs a problem with curve_metrics (sequence_policy: the mean completion length; digits_vae: the ELBO)"
    ok = curves[curves["status"] == "ok"]
    long = ok.melt(id_vars=[c for c in ok if c not in metrics], value_vars=metrics, var_name="metric",
                   value_name="value").dropna(subset=["value"])
    long["metric"] = long["metric"].str.removeprefix("metric.")
    data, order, extra = add_panel(long, ["metric", "problem"])
    g = facet_grid(data, "panel", hue="label", col_order=order)
    g.map_dataframe(sns.lineplot, x="step", y="value", errorbar=t_interval, estimator="mean", err_kws={"alpha": 0.2},
                    markevery=0.1)
    for name, ax in g.axes_dict.items():
        ax.set(xlabel="optimiser step", ylabel=name.split(" | ")[0].replace("_", " "))
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    g.tight_layout()
    return g.figure, ("the problem's exact functionals at each run's parameters (mean over the problem's own batch, "
                      "e.g. its prompts); mean over runs, band: 95 % t interval over runs" + _split_note(extra))


TRAINING_FIGURES = [
    ("curve_steps", "Learning curves against steps",
     "The exact objective (or its gap to the optimum) at each run's parameters, against optimiser steps.",
     fig_curve_steps),
    ("curve_evals", "Learning curves against evaluations of f",
     "The same curves against the cumulative evaluations of the cost: comparisons at equal work.", fig_curve_evals),
    ("curve_time", "Learning curves against wall-clock",
     "The same curves against the cumulative wall-clock of the training steps (logging excluded).", fig_curve_time),
    ("variance_along_training", "Gradient variance along training",
     "The variance of one gradient estimate at the current parameters, every variance_every steps.",
     fig_variance_along_training),
    ("metric_curves", "The problem's exact functionals along training",
     "The problem's exact functionals (curve_metrics: the sequence policy's mean completion length in tokens and "
     "its probability of a correct completion; the digits VAE's train and test ELBO), against optimiser steps.",
     fig_metric_curves),
]


def time_to_target(curves: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """Per problem and estimator: the first logged step, evaluations and seconds at which a run's
    gap is at most the target (default: a tenth of the problem's initial mean gap), as mean and
    95 % interval over the runs that reach it, and how many do."""
    if curves.empty or curves["gap"].isna().all():
        return pd.DataFrame()
    rows = []
    swept = swept_keys(curves, exclude=["problem"])  # never pooled: a column each
    for problem, by_problem in curves.groupby("problem"):
        start = by_problem[by_problem["step"] == 0]["gap"].mean()
        goal = target if target is not None else TARGET_FRACTION * start
        for keys, d in by_problem.groupby(["label", *swept], dropna=False):
            keys = keys if isinstance(keys, tuple) else (keys,)
            reached = d[(d["gap"] <= goal) & (d["status"] == "ok")].sort_values("step").groupby(["job", "run"]).head(1)
            n_runs = d.groupby(["job", "run"]).ngroups
            row = {"problem": problem, "estimator": keys[0],
                   **{short_key(k): value_text(v) for k, v in zip(swept, keys[1:])}, "target gap": f"{goal:.3g}",
                   "runs reaching it": f"{len(reached)} of {n_runs}"}
            for col, name in (("step", "steps"), ("evals", "evaluations of f"), ("time_s", "seconds")):
                row[name] = mean_with_interval(reached[col]) if len(reached) else "not reached"
            rows.append(row)
    return pd.DataFrame(rows)
