"""The report's figures: one function of the tidy table each, returning the figure (or ``None``)
and a note; a figure whose data is missing is skipped with that note instead of failing."""

from __future__ import annotations

import math
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

import matplotlib.patches  # noqa: E402

from .style import facet_grid, label_order, palette  # noqa: E402

Z_999 = NormalDist().inv_cdf(1 - 0.001 / 2)  # two-sided 99.9 %
MAX_PARAMS_PER_PROBLEM = 3  # beyond this many parameter tensors, figures show the problem's total


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with statistics (status ok or nonfinite), one parameter set per problem (see
    ``MAX_PARAMS_PER_PROBLEM``), with a ``facet`` column ``problem / param``."""
    ok = df[df["status"].isin(["ok", "nonfinite"]) & df["param"].notna()].copy()
    if "row_kind" in ok:
        ok = ok[ok["row_kind"] != "component"]
    keep = []
    for problem, group in ok.groupby("problem"):
        params = [p for p in group["param"].unique() if p != "total"]
        chosen = ["total"] if len(params) > MAX_PARAMS_PER_PROBLEM else params + ["total"]
        keep.append(group[group["param"].isin(chosen)])
    ok = pd.concat(keep) if keep else ok
    ok["facet"] = ok["problem"] + " / " + ok["param"].astype(str)
    return ok


def swept_problem_keys(df: pd.DataFrame) -> list[str]:
    """Problem keys that vary within one problem across the data (e.g. ``problem.k``)."""
    keys = []
    for c in df.columns:
        if c.startswith("problem.") and df.groupby("problem")[c].nunique(dropna=True).max() > 1:
            if pd.api.types.is_numeric_dtype(df[c]):
                keys.append(c)
    return keys


def _panels(n: int, width: float, height: float):
    """A grid of ``n`` panels, three to a row; returns the figure and the first ``n`` axes."""
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _errorbars(x_col, y_col, err_col, data=None, color=None, **_):
    d = data.sort_values(x_col)
    plt.errorbar(d[x_col], d[y_col], yerr=d[err_col], fmt="none", ecolor=color, elinewidth=1, capsize=2)


def _clip_log_axis(ax, values: pd.Series) -> None:
    """Keep a log axis on the data: an exact zero variance (e.g. measure-valued at a = 0) would
    otherwise pull it down to round-off."""
    v = values[values > 0]
    if len(v):
        top = v.max()
        floor = v[v > top * 1e-6].min()
        ax.set_ylim(floor / 3, top * 3)


def fig_variance_vs_samples(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    ok = measured(df)
    counts = ok.groupby(["facet", "label"])["n_samples"].nunique()
    if ok.empty or counts.max() < 2:
        return None, "needs a sweep over at least two values of n_samples"
    ok = ok[ok.set_index(["facet", "label"]).index.isin(counts[counts >= 2].index)]
    ok = ok[ok["variance"] > 0]
    g = facet_grid(ok, "facet", hue="label")
    g.map_dataframe(sns.lineplot, x="n_samples", y="variance", marker="o", errorbar=None)
    g.map_dataframe(_errorbars, "n_samples", "variance", "variance_se")
    for facet, ax in g.axes_dict.items():
        d = ok[ok["facet"] == facet]
        ax.set(xscale="log", yscale="log", xlabel="n_samples", ylabel="variance of one estimate")
        n = np.array(sorted(d["n_samples"].unique()), dtype=float)
        anchor = d.sort_values("n_samples").groupby("label")["variance"].first().max()
        ax.plot(n, anchor * n[0] / n, "k--", lw=1, label="1/n")
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    return g.figure, ""


def fig_variance_vs_key(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    keys = swept_problem_keys(df)
    if not keys:
        return None, "needs a sweep over a numeric problem key (e.g. problem.k)"
    key = keys[0]
    ok = measured(df)
    ok = ok[ok[key].notna() & (ok["variance"] > 0)]
    if ok.empty:
        return None, f"no measured rows along {key}"
    n_values = sorted(ok["n_samples"].unique())
    ok = ok[ok["n_samples"] == n_values[-1]]  # one sample size per figure: the largest
    g = facet_grid(ok, "facet", hue="label")
    g.map_dataframe(sns.scatterplot, x=key, y="variance", s=25)
    g.map_dataframe(_errorbars, key, "variance", "variance_se")
    colors = palette(ok["label"])
    for facet, ax in g.axes_dict.items():
        d = ok[ok["facet"] == facet]
        for label, curve in exact_curves(d, key).items():
            ax.plot(curve[0], curve[1], color=colors.get(label, "k"), lw=1.2)
        ax.set(yscale="log", xlabel=key, ylabel=f"variance (n_samples={n_values[-1]})")
        _clip_log_axis(ax, d["variance"])
    g.add_legend(title="estimator (lines: exact)")
    g.set_titles("{col_name}")
    more = f"; other swept keys not drawn: {', '.join(keys[1:])}" if len(keys) > 1 else ""
    return g.figure, f"swept key {key}{more}"


def exact_curves(d: pd.DataFrame, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Exact variance along ``key`` for each estimator label where :mod:`bench.exact_variance`
    knows it (the registered problem and estimator rebuilt from the row's configuration)."""
    from estimators import ESTIMATORS, make_estimator

    from ..exact_variance import exact_variance_curve
    from ..problems import PROBLEMS, make_problem

    out = {}
    if d.empty:
        return out
    grid = np.linspace(d[key].min(), d[key].max(), 121)
    for label, rows in d.groupby("label"):
        r = rows.iloc[0]
        if r["problem"] not in PROBLEMS or r["estimator"] not in ESTIMATORS:
            continue  # a component from outside the repository: no exact curve known here
        problem = make_problem(r["problem"], config_options(rows, "problem", PROBLEMS[r["problem"]]))
        estimator = make_estimator(r["estimator"], config_options(rows, "estimator", ESTIMATORS[r["estimator"]]))
        ys = exact_variance_curve(problem, estimator, key.split(".", 1)[1], grid, int(r["n_samples"]),
                                  int(r.get("n_replicates", 2)), r["param"])
        if ys is not None:
            out[label] = (grid, ys)
    return out


def config_options(rows: pd.DataFrame, group: str, cls) -> dict:
    """A component's options from a row's ``group.*`` columns, typed as the class declares them."""
    r = rows.iloc[0]
    out = {}
    for key, spec in cls.options_spec.items():
        col = f"{group}.{key}"
        if col not in rows or pd.isna(r[col]):
            continue
        value = r[col]
        default = spec.default
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


def fig_bias(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["bias"].notna()]
    if ok.empty:
        return None, "needs rows with an exact gradient (bias columns)"
    problems = sorted(ok["problem"].unique())
    n_labels = ok.groupby("problem")["label"].nunique().max()
    fig, axes = _panels(len(problems), 6.0, 0.55 * n_labels + 1.8)
    rng = np.random.default_rng(0)
    for ax, problem in zip(axes, problems):
        d = ok[ok["problem"] == problem]
        labels = sorted(d["label"].unique())
        pos = d["label"].map({lab: i for i, lab in enumerate(labels)}).to_numpy(float)
        y = pos + (rng.uniform(-0.25, 0.25, len(d)) if len(d) > len(labels) else 0)
        sig = d["bias_significant"].fillna(False).to_numpy(bool)
        ax.errorbar(d["bias"], y, xerr=Z_999 * d["bias_se"], fmt="none", ecolor="0.6", elinewidth=0.8, capsize=1.5)
        ax.scatter(d["bias"][~sig], y[~sig], color="tab:blue", s=14, zorder=3, label="not significant")
        ax.scatter(d["bias"][sig], y[sig], color="tab:red", s=18, zorder=3, label="significant at 99.9 %")
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="bias = ||mean estimate - exact gradient|| (total)", title=problem)
        ax.set_xlim(left=0)
    axes[0].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig, "one point per job; bars: 99.9 % intervals (3.29 bias_se)"


def fig_time(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["time_per_estimate_s"].notna()]
    if ok.empty:
        return None, "needs timed jobs (timing=true)"
    if "time_iqr_s" not in ok:
        ok = ok.assign(time_iqr_s=0.0)
    keys = ["problem", "label", "device", "n_samples"]
    agg = ok.groupby(keys, as_index=False)[["time_per_estimate_s", "time_iqr_s"]].median()
    agg["row"] = agg["label"] + " [" + agg["device"].astype(str) + "] n=" + agg["n_samples"].astype(str)
    problems = sorted(agg["problem"].unique())
    n_rows = agg.groupby("problem").size().max()
    fig, axes = _panels(len(problems), 6.5, 0.4 * n_rows + 1.6)
    cmap = palette(agg["label"])
    for ax, problem in zip(axes, problems):
        d = agg[agg["problem"] == problem].sort_values("row")
        y = np.arange(len(d))
        ax.barh(y, d["time_per_estimate_s"] * 1e6, xerr=d["time_iqr_s"] * 1e6 / 2, capsize=2,
                color=[cmap[lab] for lab in d["label"]])
        ax.set_yticks(y, d["row"])
        us = d["time_per_estimate_s"] * 1e6
        ax.set(xscale="log" if us.max() > 30 * us.min() else "linear",
               xlabel="time per estimate (µs; bars: interquartile range)", title=problem)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    return fig, "medians over jobs that differ only in other keys"


def fig_accuracy_vs_cost(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["mse"].notna() & (ok["mse"] > 0) & (ok["evals_per_estimate"] > 0)]
    have_time = ok["time_per_estimate_s"].notna().any() if not ok.empty else False
    if ok.empty:
        return None, "needs rows with an exact gradient (mse)"
    x = "time_per_estimate_s" if have_time else "evals_per_estimate"
    keys = ["problem", "label", "n_samples"]
    agg = ok.groupby(keys, as_index=False)[[x, "mse"]].median().sort_values(keys)
    g = facet_grid(agg, "problem", hue="label")
    g.map_dataframe(sns.lineplot, x=x, y="mse", marker="o", errorbar=None, sort=False)
    for problem, ax in g.axes_dict.items():
        ax.set(xscale="log", yscale="log", ylabel="MSE of one estimate",
               xlabel="time per estimate (s)" if have_time else "evaluations of f per estimate")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    note = "points along a line: n_samples; lower left is better"
    return g.figure, note if have_time else note + "; no timings, so against evaluations of f"


def fig_direction(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    """Bias (in standard errors), cosine to the exact gradient and norm ratio against n_samples:
    whether an estimator costs direction or only magnitude."""
    if "cosine_to_exact" not in df:
        return None, "needs the cosine_to_exact column"
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["cosine_to_exact"].notna()]
    if ok.empty or ok["n_samples"].nunique() < 2:
        return None, "needs a sweep over at least two values of n_samples"
    long = pd.concat([
        ok.assign(metric="bias / bias_se", value=ok["bias"] / ok["bias_se"]),
        ok.assign(metric="cosine to the exact gradient", value=ok["cosine_to_exact"]),
        ok.assign(metric="|mean estimate| / |exact gradient|", value=ok["norm_ratio_to_exact"]),
    ])
    long["panel"] = long["problem"] + ": " + long["metric"]
    g = facet_grid(long, "panel", hue="label", height=3.4)
    g.map_dataframe(sns.lineplot, x="n_samples", y="value", marker="o", errorbar=None)
    n = np.array(sorted(ok["n_samples"].unique()), dtype=float)
    for panel, ax in g.axes_dict.items():
        ax.set(xscale="log", xlabel="n_samples (the group size G)", ylabel=panel.split(": ", 1)[1])
        ax.set_xticks(n, [f"{int(v)}" for v in n])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if panel.endswith("bias_se"):
            refs = [ax.axhline(Z_999, color="k", ls=":", lw=1, label="3.29: significant at 99.9 % (one coordinate)")]
        elif "cosine" in panel:
            refs = [ax.axhline(1.0, color="k", ls=":", lw=1, label="1: the exact direction")]
        else:
            refs = [ax.axhline(1.0, color="k", ls=":", lw=1, label="1: the exact length"),
                    ax.plot(n, (n - 1) / n, "k--", lw=1, label="(G-1)/G: mean-centring with the sample itself")[0]]
        ax.legend(handles=refs, loc="best", fontsize=7)
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    return g.figure, "total over theta; the mean of n_replicates estimates"


def fig_component_shares(df: pd.DataFrame) -> tuple[plt.Figure | None, str]:
    """Each component's (prompt's) share of the mean update against its share of the exact gradient."""
    if "row_kind" not in df or not (df["row_kind"] == "component").any():
        return None, "needs a problem with components (e.g. the prompts of sequence_policy)"
    comp = df[(df["row_kind"] == "component") & df["status"].isin(["ok", "nonfinite"])].copy()
    comp["panel"] = comp["problem"] + ", n_samples=" + comp["n_samples"].astype(int).astype(str)
    order = sorted(comp["panel"].unique(), key=lambda p: (p.split(",")[0], int(p.rsplit("=", 1)[1])))
    labels = label_order(comp["label"])
    g = facet_grid(comp, "panel", height=3.2, aspect=1.6, col_order=order)
    g.map_dataframe(sns.barplot, x="param", y="update_share", hue="label", hue_order=labels,
                    palette=palette(labels), order=sorted(comp["param"].unique()), errorbar=None)
    for panel, ax in g.axes_dict.items():
        exact = comp[comp["panel"] == panel].groupby("param")["exact_share"].first()
        ref = ax.scatter(range(len(exact)), exact.to_numpy(), marker="_", s=1500, color="k", zorder=5,
                         linewidths=2.5, label="share of the exact gradient")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(xlabel="", ylabel="share of the mean update")
        ax.legend(handles=[ref], loc="upper left", fontsize=7, markerscale=0.3)
    handles = [matplotlib.patches.Patch(color=palette(labels)[lab], label=lab) for lab in labels]
    g.figure.legend(handles=handles, title="estimator", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    g.set_titles("{col_name}")
    return g.figure, "share = <component, whole> / |whole|^2 in theta (the shares sum to 1); black: the exact gradient's"


FIGURES = [
    ("variance_vs_samples", "Variance against the number of samples",
     "Variance of one estimate (trace over the parameter's coordinates) against n_samples, log-log, with "
     "±1 standard error bars; the dashed line is the 1/n slope.", fig_variance_vs_samples),
    ("variance_vs_key", "Variance along a swept problem key",
     "Sampled variances (points, ±1 standard error) with the exact variance (lines) where it is known, as in "
     "Figures 2-3 of Mohamed et al. 2020.", fig_variance_vs_key),
    ("bias", "Bias with 99.9 % intervals",
     "Bias of each estimator (total over θ) with its 99.9 % noise level (3.29 bias_se); red: the bias is "
     "significant at the 99.9 % level (Bonferroni-corrected per coordinate).", fig_bias),
    ("time", "Wall-clock per estimate",
     "Median latency of one estimate as a training step pays it (encode, surrogate, backward), by estimator "
     "and device; bars: interquartile range.", fig_time),
    ("direction", "Bias, direction and magnitude against n_samples",
     "For each estimator, the bias in standard errors, the cosine between the mean estimate and the exact gradient, "
     "and the ratio of their norms: a biased estimator may cost direction or only magnitude.", fig_direction),
    ("component_shares", "Each component's share of the mean update",
     "Each prompt's share of the mean update (bars) against its share of the exact gradient (black): the "
     "re-weighting of prompts that Dr. GRPO attributes to GRPO's standard-deviation scaling, measured.",
     fig_component_shares),
    ("accuracy_vs_cost", "Accuracy against cost",
     "MSE of one estimate against its wall-clock time, per problem: which estimator gives the most accurate "
     "gradient per second (the table below compares them at equal work).", fig_accuracy_vs_cost),
]


