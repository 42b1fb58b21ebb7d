"""The report's figures: one function of the tidy table each, returning the figure (or ``None``)
and a note; a figure whose data is missing is skipped with that note instead of failing."""

from __future__ import annotations

from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

import textwrap  # noqa: E402

from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..results import MEASURED_STATUSES, NOISY_TIMING, noisy_timing  # noqa: E402
from .style import facet_grid, label_order, look, palette  # noqa: E402
from .sweep import add_panel, swept_problem_keys, value_text  # noqa: E402

Z_999 = NormalDist().inv_cdf(1 - 0.001 / 2)  # two-sided 99.9 %
MAX_PARAMS_PER_PROBLEM = 3  # beyond this many parameter tensors, figures show the problem's total


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with statistics (status ok or nonfinite), one parameter set per problem: its tensors
    and ``total``, or only ``total`` for one tensor or beyond ``MAX_PARAMS_PER_PROBLEM`` tensors."""
    ok = df[df["status"].isin(MEASURED_STATUSES) & df["param"].notna()].copy()
    if "row_kind" in ok:
        ok = ok[ok["row_kind"] != "component"]
    keep = []
    for problem, group in ok.groupby("problem"):
        params = [p for p in group["param"].unique() if p != "total"]
        chosen = ["total"] if len(params) > MAX_PARAMS_PER_PROBLEM or len(params) == 1 else params + ["total"]
        keep.append(group[group["param"].isin(chosen)])
    return pd.concat(keep) if keep else ok


def _errorbars(x_col, y_col, err_col, data=None, color=None, **_):
    d = data.sort_values(x_col)
    plt.errorbar(d[x_col], d[y_col], yerr=d[err_col], fmt="none", ecolor=color, elinewidth=1, capsize=2)


def _clip_log_axis(ax, values: pd.Series) -> None:
    """Keep a log axis on the data: an exact zero variance (e.g. measure-valued at a = 0) would
    otherwise pull it down to round-off. Round-off of a zero variance sits near (1e-7 |g|)^2 in
    float32, 1e-14 of the others; a real variance can be 1e-6 of the largest (Dr. GRPO's over the
    max length against verl's token sum), so the cut is at 1e-10."""
    v = values[values > 0]
    if len(v):
        top = v.max()
        floor = v[v > top * 1e-10].min()
        ax.set_ylim(floor / 3, top * 3)


def _finish(g: sns.FacetGrid, legend_title: str = "estimator", extra_handles=()) -> plt.Figure:
    """Panel titles wrapped (never overlapping), one legend naming every line, tight layout."""
    g.set_titles("{col_name}" if g.row_names == [] or not g.row_names else "{row_name} | {col_name}")
    for ax in g.axes.flat:
        ax.set_title("\n".join(textwrap.wrap(ax.get_title(), 48)), fontsize=9)
    handles = {}
    for ax in g.axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if not lab.startswith("_"):
                handles.setdefault(lab, h)
    ordered = label_order([lab for lab in handles if lab in set(g.hue_names or [])]) if g.hue_names else []
    handles = {**{lab: handles[lab] for lab in ordered}, **{k: v for k, v in handles.items() if k not in ordered}}
    for h in extra_handles:
        handles[h.get_label()] = h
    if handles:
        g.figure.legend(list(handles.values()), list(handles.keys()), title=legend_title, loc="center left",
                        bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    g.tight_layout()
    return g.figure


def _log_ticks(ax, axis: str, values) -> None:
    """A log axis labelled at the data's own values (n_samples) rather than at decades only."""
    values = sorted(set(float(v) for v in values))
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(matplotlib.ticker.FixedLocator(values))
    target.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: value_text(v)))
    target.set_minor_locator(matplotlib.ticker.NullLocator())


SUBS = [(1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), tuple(np.arange(1, 10, 0.5))]


def _log_axis(ax, axis: str, values) -> None:
    """A log axis with between 3 and 8 labelled ticks written as plain numbers, whatever the span
    (matplotlib labels only decades by default, so a narrow span had no labels or crowded ones)."""
    v = np.asarray([x for x in values if x > 0], dtype=float)
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if not len(v):
        return
    lo, hi = v.min(), v.max()
    chosen = SUBS[0]
    for subs in SUBS:
        ticks = [m * 10.0**e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
                 for m in subs if lo / 1.2 <= m * 10.0**e <= hi * 1.2]
        chosen = subs
        if len(ticks) >= 3:
            break
    target.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=chosen, numticks=30))
    target.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    target.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _reference(label: str, **style) -> Line2D:
    return Line2D([], [], label=label, **style)


def fig_variance_vs_samples(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    ok = measured(df)
    ok, order, extra = add_panel(ok, ["problem", "param"], exclude=["n_samples"])
    counts = ok.groupby(["panel", "label"])["n_samples"].nunique()
    if ok.empty or counts.max() < 2:
        return None, "needs a sweep over at least two values of n_samples"
    ok = ok[ok.set_index(["panel", "label"]).index.isin(counts[counts >= 2].index) & (ok["variance"] > 0)]
    order = [p for p in order if p in set(ok["panel"])]
    g = facet_grid(ok, "panel", hue="label", col_order=order)
    g.map_dataframe(sns.lineplot, x="n_samples", y="variance", errorbar=None)
    g.map_dataframe(_errorbars, "n_samples", "variance", "variance_se")
    for panel, ax in g.axes_dict.items():
        d = ok[ok["panel"] == panel]
        ax.set(xscale="log", yscale="log", xlabel="n_samples", ylabel="variance of one estimate")
        n = np.array(sorted(d["n_samples"].unique()), dtype=float)
        # The slope above every line (anchored on one, it would hide under it).
        anchor = 2 * d.sort_values("n_samples").groupby("label")["variance"].first().max()
        ax.plot(n, anchor * n[0] / n, **SLOPE)
        _log_ticks(ax, "x", n)
        _clip_log_axis(ax, d["variance"])
    fig = _finish(g, extra_handles=[_reference("1/n slope", **SLOPE)])
    return fig, _panels_note(extra)


SLOPE = dict(color="0.35", ls="--", lw=1.3)


def _panels_note(extra: list[str]) -> str:
    return f"panels also split by {', '.join(extra)}" if extra else ""


def curves_for(exact: pd.DataFrame | None, d: pd.DataFrame, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The exact curve along ``key`` of each label in a panel's rows ``d`` (from ``exact_curves.csv``:
    the curve whose configuration is that of the label's rows)."""
    if exact is None or exact.empty or d.empty:
        return {}
    exact = exact[exact["key"] == key]
    out = {}
    for label, rows in d.groupby("label"):
        r = rows.iloc[0]
        match = exact["label"] == label
        for c in exact.columns:
            if c in ("key", "x", "exact_variance", "label") or c not in r.index:
                continue
            match &= (exact[c] == r[c]) | (exact[c].isna() & pd.isna(r[c]))
        curve = exact[match].sort_values("x")
        if len(curve):
            out[label] = (curve["x"].to_numpy(), curve["exact_variance"].to_numpy())
    return out


def fig_variance_vs_key(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    keys = swept_problem_keys(df)
    if not keys:
        return None, "needs a sweep over a numeric problem key (e.g. problem.k)"
    key = keys[0]
    ok = measured(df)
    ok = ok[ok[key].notna() & (ok["variance"] > 0)]
    ok = ok[ok.groupby("problem")[key].transform("nunique") > 1]  # the problems that sweep it
    if ok.empty:
        return None, f"no measured rows along {key}"
    ok, order, extra = add_panel(ok, ["problem", "param"], exclude=[key])
    g = facet_grid(ok, "panel", hue="label", col_order=order)
    g.map_dataframe(sns.scatterplot, x=key, y="variance", s=28)
    g.map_dataframe(_errorbars, key, "variance", "variance_se")
    colors = palette(ok["label"])
    drawn = False
    for panel, ax in g.axes_dict.items():
        d = ok[ok["panel"] == panel]
        for label, curve in curves_for(exact, d, key).items():
            ax.plot(curve[0], curve[1], color=colors.get(label, "k"), lw=1.2)
            drawn = True
        ax.set(yscale="log", xlabel=key, ylabel="variance of one estimate")
        _clip_log_axis(ax, d["variance"])
    refs = [_reference("measured, ±1 standard error", color="0.3", marker="o", ls="none")]
    if drawn:
        refs.append(_reference("exact variance (line, the estimator's colour)", color="0.3", lw=1.2))
    fig = _finish(g, extra_handles=refs)
    note = f"swept key {key} on the x axis"
    if extra:
        note += f"; {_panels_note(extra)}"
    return fig, note


def fig_bias(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    """bias / bias_se (the bias in standard errors) against the swept key, with the noise band:
    readable at any number of jobs."""
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["bias"].notna() & (ok["bias_se"] > 0)].copy()
    if ok.empty:
        return None, "needs rows with an exact gradient (bias columns)"
    ok["z"] = ok["bias"] / ok["bias_se"]
    # The x axis: a numeric key that every problem in the data sweeps (else one row per estimator).
    numeric = [k for k in swept_problem_keys(ok) + ["n_samples"]
               if ok.groupby("problem")[k].nunique(dropna=True).min() > 1]
    x = numeric[0] if numeric else None
    ok, order, extra = add_panel(ok, ["problem"], exclude=[x] if x else [])
    if x is None:  # nothing swept along an axis: one row of points per estimator
        g = facet_grid(ok, "panel", col_order=order, height=0.45 * ok["label"].nunique() + 1.6, aspect=2.2)
        g.map_dataframe(sns.stripplot, x="z", y="label", hue="label", palette=palette(ok["label"]),
                        order=label_order(ok["label"]), hue_order=label_order(ok["label"]), size=6, legend=False)
        value_axis = "x"
    else:
        g = facet_grid(ok, "panel", hue="label", col_order=order)
        g.map_dataframe(sns.lineplot, x=x, y="z", errorbar=None)
        value_axis = "y"
    for panel, ax in g.axes_dict.items():
        d = ok[ok["panel"] == panel]
        band = (ax.axvspan if value_axis == "x" else ax.axhspan)(0, Z_999, color="0.85", zorder=0)
        sig = d[d["bias_significant"].fillna(False).astype(bool)]
        top = max(2.2 * Z_999, 1.15 * float(d["z"].max()))
        if value_axis == "x":
            positions = {lab: i for i, lab in enumerate(label_order(d["label"]))}
            ax.scatter(sig["z"], sig["label"].map(positions), s=90, facecolors="none", edgecolors="red", zorder=5)
            ax.set(xlabel="bias / bias_se", ylabel="", xlim=(0, top))
            if top > 60:
                ax.set_xscale("symlog", linthresh=10)
                ax.set_xlim(0, top)
        else:
            ax.scatter(sig[x], sig["z"], s=90, facecolors="none", edgecolors="red", zorder=5)
            ax.set(ylabel="bias / bias_se", xlabel=x, ylim=(0, top))
            if top > 60:
                ax.set_yscale("symlog", linthresh=10)
                ax.set_ylim(0, top)
            if x == "n_samples":
                ax.set_xscale("log")
                _log_ticks(ax, "x", d[x])
        del band
    refs = [Patch(color="0.85", label=f"noise: below {Z_999:.2f} standard errors (99.9 %, one coordinate)"),
            _reference("bias significant at 0.1 % (the job's test)", color="red", marker="o", ls="none",
                       markerfacecolor="none")]
    fig = _finish(g, extra_handles=refs)
    note = "total over theta (symlog scale, linear below 10, when some bias is beyond 60 standard errors)"
    return fig, note + (f"; {_panels_note(extra)}" if extra else "")


def fig_time(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    """Median latency per estimator with whiskers from the first to the third quartile, on one
    log axis for every panel."""
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["time_per_estimate_s"].notna()].copy()
    if ok.empty:
        return None, "needs timed jobs (timing=true)"
    if "time_q1_s" not in ok or ok["time_q1_s"].isna().all():  # files written before the quartiles were kept
        half = ok.get("time_iqr_s", pd.Series(0.0, index=ok.index)).fillna(0) / 2
        ok["time_q1_s"] = (ok["time_per_estimate_s"] - half).clip(lower=ok["time_per_estimate_s"] / 10)
        ok["time_q3_s"] = ok["time_per_estimate_s"] + half
    ok, order, extra = add_panel(ok, ["problem"])
    height = 0.28 * ok.groupby("panel")["label"].nunique().max() + 1.4
    g = facet_grid(ok, "panel", col_order=order, height=height, aspect=9 / height)  # panels 9 in wide, labels included
    colors = palette(ok["label"])
    everything = 1e6 * pd.concat([ok["time_q1_s"], ok["time_q3_s"]])  # one x axis for every panel
    noisy_any = False
    for panel, ax in g.axes_dict.items():
        d = ok[ok["panel"] == panel]
        labels = label_order(d["label"])
        for i, lab in enumerate(labels):
            r = d[d["label"] == lab].iloc[0]
            us = 1e6 * np.array([r["time_q1_s"], r["time_per_estimate_s"], r["time_q3_s"]])
            noisy = noisy_timing(us[1], us[2] - us[0])
            noisy_any |= noisy
            ax.errorbar([us[1]], [i], xerr=[[us[1] - us[0]], [us[2] - us[1]]], fmt=look(lab)[1],
                        color=colors[lab], capsize=3, ms=6, mfc="white" if noisy else colors[lab])
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="time per estimate (µs): median, whiskers at the quartiles", ylabel="")
        _log_axis(ax, "x", everything)
        ax.set_xlim(everything[everything > 0].min() / 1.5, everything.max() * 1.5)
        ax.invert_yaxis()
    refs = [_reference(f"hollow: a noisy timing (quartiles more than {NOISY_TIMING:.0%} of the median apart)",
                       color="0.3", marker="o", ls="none", mfc="white")] if noisy_any else []
    fig = _finish(g, extra_handles=refs)
    return fig, "one time axis for every panel" + (f"; {_panels_note(extra)}" if extra else "")


def fig_accuracy_vs_cost(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["mse"].notna() & (ok["mse"] > 0) & (ok["evals_per_estimate"] > 0)]
    have_time = ok["time_per_estimate_s"].notna().any() if not ok.empty else False
    if ok.empty:
        return None, "needs rows with an exact gradient (mse)"
    ok = ok.assign(time_us=ok["time_per_estimate_s"] * 1e6)
    x = "time_us" if have_time else "evals_per_estimate"
    ok, order, extra = add_panel(ok, ["problem"], exclude=["n_samples"])
    ok = ok.sort_values(["panel", "label", "n_samples"])
    g = facet_grid(ok, "panel", hue="label", col_order=order)
    g.map_dataframe(sns.lineplot, x=x, y="mse", errorbar=None, sort=False)
    for panel, ax in g.axes_dict.items():
        d = ok[ok["panel"] == panel]
        ax.set(ylabel="MSE of one estimate (total)",
               xlabel="time per estimate (µs)" if have_time else "evaluations of f per estimate")
        _log_axis(ax, "x", ok[x])  # one cost axis for every panel
        ax.set_xlim(ok[x][ok[x] > 0].min() / 1.5, ok[x].max() * 1.5)
        _log_axis(ax, "y", d["mse"])
        for label, line in d.groupby("label"):  # name the two ends of each line: where it starts, where it goes
            if line["n_samples"].nunique() > 1:
                for _, end in line.iloc[[0, -1]].iterrows():
                    ax.annotate(f"n={value_text(end['n_samples'])}", (end[x], end["mse"]), fontsize=6,
                                color=look(label)[0], xytext=(3, 3), textcoords="offset points")
    fig = _finish(g, extra_handles=[])
    note = "points along a line: n_samples, increasing (its ends named); lower left is better; one cost axis"
    note += "" if have_time else "; no timings, so against evaluations of f"
    return fig, note + (f"; {_panels_note(extra)}" if extra else "")


def fig_direction(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    """Bias (in standard errors), cosine to the exact gradient and norm ratio against n_samples (or,
    where n_samples is not swept, a swept numeric problem key, e.g. the off-policy losses' staleness):
    whether an estimator costs direction or only magnitude."""
    if "cosine_to_exact" not in df:
        return None, "needs the cosine_to_exact column"
    ok = measured(df)
    ok = ok[(ok["param"] == "total") & ok["cosine_to_exact"].notna()]
    keys = [] if ok.empty else (["n_samples"] if ok["n_samples"].nunique() > 1 else []) + swept_problem_keys(ok)
    if not keys or not (ok["bias_significant"].fillna(False).astype(bool)).any():
        return None, "needs a sweep over n_samples or a numeric problem key with a biased estimator"
    x = keys[0]
    ok, order, extra = add_panel(ok, ["problem"], exclude=[x])
    metrics = ["bias / bias_se", "cosine to the exact gradient", "|mean estimate| / |exact gradient|"]
    long = pd.concat([ok.assign(metric=metrics[0], value=ok["bias"] / ok["bias_se"]),
                      ok.assign(metric=metrics[1], value=ok["cosine_to_exact"]),
                      ok.assign(metric=metrics[2], value=ok["norm_ratio_to_exact"])])
    g = facet_grid(long, "metric", row="panel", hue="label", height=3.2, col_order=metrics, row_order=order)
    g.map_dataframe(sns.lineplot, x=x, y="value", errorbar=None)
    n = np.array(sorted(ok[x].unique()), dtype=float)
    # n_samples is a group's size G only where a group estimator is swept (its centring is a column)
    grouped = x == "n_samples" and "estimator.center" in ok and ok["estimator.center"].notna().any()
    for (panel, metric), ax in g.axes_dict.items():
        if x == "n_samples":
            ax.set(xscale="log", xlabel="n_samples (the group size G)" if grouped else "n_samples", ylabel=metric)
            _log_ticks(ax, "x", n)
        else:
            ax.set(xlabel=x, ylabel=metric)
        if metric == metrics[0]:
            ax.axhline(Z_999, color="k", ls=":", lw=1)
            ax.set_yscale("symlog")
            ax.set_ylim(bottom=0)  # a bias in standard errors is never negative
        else:
            ax.axhline(1.0, color="k", ls=":", lw=1)
        if metric == metrics[2] and grouped:
            ax.plot(n, (n - 1) / n, "k--", lw=1)
    refs = [_reference("3.29 standard errors (left) / 1, the exact value (others)", color="k", ls=":", lw=1)]
    if grouped:
        refs.append(_reference("(G-1)/G: mean-centring that includes the sample itself", color="k", ls="--", lw=1))
    fig = _finish(g, extra_handles=refs)
    return fig, "total over theta; the mean of n_replicates estimates" + (f"; {_panels_note(extra)}" if extra else "")


def fig_component_shares(df: pd.DataFrame, exact: pd.DataFrame | None = None) -> tuple[plt.Figure | None, str]:
    """Each component's (prompt's) share of the mean update against its share of the exact gradient."""
    if "row_kind" not in df or not (df["row_kind"] == "component").any():
        return None, "needs a problem with components (e.g. the prompts of sequence_policy)"
    comp = df[(df["row_kind"] == "component") & df["status"].isin(MEASURED_STATUSES)].copy()
    comp, order, extra = add_panel(comp, ["problem", "n_samples"])
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
        first = comp[comp["panel"] == panel].iloc[0]  # the title names the group size: "problem | G = 4 | ..."
        ax.set_title(panel.replace(f"{first['problem']} | {value_text(first['n_samples'])}",
                                   f"{first['problem']} | G = n_samples = {value_text(first['n_samples'])}", 1))
    handles = [Patch(color=palette(labels)[lab], label=lab) for lab in labels]
    g.figure.legend(handles=handles, title="estimator", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    g.tight_layout()
    return g.figure, "share = <component, whole> / |whole|^2 in theta (the shares sum to 1); black: the exact gradient's"


FIGURES = [
    ("variance_vs_samples", "Variance against the number of samples",
     "Variance of one estimate (trace over the parameter's coordinates) against n_samples, log-log, with "
     "±1 standard error bars; the dashed line is the 1/n slope.", fig_variance_vs_samples),
    ("variance_vs_key", "Variance along a swept problem key",
     "Sampled variances (points, ±1 standard error) with the exact variance (lines) where it is known, as in "
     "Figures 2-3 of Mohamed et al. 2020.", fig_variance_vs_key),
    ("bias", "Bias in standard errors",
     "The bias of each estimator (total over θ) divided by its standard error, against the swept key; grey: "
     "below 3.29, the 99.9 % noise level of one coordinate; circled in red: the job's bias test (in φ, "
     "family-wise 0.1 %) is significant.", fig_bias),
    ("time", "Wall-clock per estimate",
     "Median latency of one estimate as a training step pays it (encode, surrogate, backward), with whiskers "
     "at the first and third quartiles.", fig_time),
    ("direction", "Bias, direction and magnitude against n_samples (or a swept problem key)",
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


