"""Plot reports: ``python -m bench.report PATH [PATH ...] [--out DIR]``.

Reads sweep folders (their ``results.csv``) or ``results.csv`` files and writes, into the first
folder (or ``--out``), one PNG per figure, ``report.md`` (renders on a code-hosting site) and
``report.html`` (figures embedded; opens in a browser with no server), then prints their paths.
Each figure is one function of the tidy table; a figure whose data is missing is skipped with a
note instead of failing.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .results import LEADING, MEASURED, SWEEP_FILE, TRAILING  # noqa: E402

REQUIRED = ["status", "message", "estimator", "problem", "n_samples", "param", "variance", "variance_se",
            "bias", "bias_se", "bias_significant", "mse", "evals_per_estimate", "work_variance",
            "time_per_estimate_s"]
ROOT_KEYS = ["n_replicates", "seed", "device", "dtype", "chunk_elements", "timing", "timing_min_run_time",
             "progress", "allow_not_applicable", "resume", "compile", "job"]
Z_999 = NormalDist().inv_cdf(1 - 0.001 / 2)  # two-sided 99.9 %
MAX_PARAMS_PER_PROBLEM = 3  # beyond this many parameter tensors, figures show the problem's total


class ReportError(ValueError):
    """Input the report cannot use (one line, names the file and what is wrong)."""


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    path: Path | None = None
    skipped: str | None = None  # the note shown instead, when the data lacks what it needs


@dataclass
class Report:
    df: pd.DataFrame
    out_dir: Path
    figures: list[Figure] = field(default_factory=list)


# ----------------------------------------------------------------------------- loading


def load(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate the results of sweep folders and/or ``results.csv`` files, checking columns."""
    frames = []
    for raw in paths:
        path = Path(raw)
        file = path / SWEEP_FILE if path.is_dir() else path
        if not file.is_file():
            raise ReportError(f"{raw}: no {SWEEP_FILE} there (give a sweep folder or a results.csv file)")
        try:
            df = pd.read_csv(file)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ReportError(f"{file}: not a readable CSV ({e})") from None
        check_columns(df, file)
        df["source"] = str(file)
        frames.append(df)
    if not frames:
        raise ReportError("no input: give at least one sweep folder or results.csv")
    df = pd.concat(frames, ignore_index=True)
    df["bias_significant"] = df["bias_significant"].map(
        {True: True, False: False, "True": True, "False": False}).astype("boolean")
    computed = estimator_labels(df)
    df["label"] = df["label"].astype(object).where(df["label"].notna(), computed) if "label" in df else computed
    return df


def check_columns(df: pd.DataFrame, file: Path) -> None:
    missing = [c for c in REQUIRED if c not in df.columns]
    known = set(LEADING + MEASURED + TRAILING + ROOT_KEYS + REQUIRED)
    unknown = [c for c in df.columns if c not in known and not c.startswith(("estimator.", "problem.", "hydra."))]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns {', '.join(unknown)}")
        raise ReportError(f"{file}: {'; '.join(parts)} (expected a results.csv written by python -m bench.run)")


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


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with statistics (status ok or nonfinite), one parameter set per problem (see
    ``MAX_PARAMS_PER_PROBLEM``), with a ``facet`` column ``problem / param``."""
    ok = df[df["status"].isin(["ok", "nonfinite"]) & df["param"].notna()].copy()
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


# ----------------------------------------------------------------------------- figures


def palette(labels) -> dict:
    """One colour per estimator label, the same in every figure (tab20 beyond ten labels)."""
    labels = sorted(set(labels))
    colors = sns.color_palette("tab10" if len(labels) <= 10 else "tab20", n_colors=len(labels))
    return dict(zip(labels, colors))


def _grid(data: pd.DataFrame, col: str, **kw):
    n = data[col].nunique()
    if "hue" in kw:
        kw.setdefault("palette", palette(data[kw["hue"]]))
        kw.setdefault("hue_order", sorted(data[kw["hue"]].unique()))
    return sns.FacetGrid(data, col=col, col_wrap=min(3, n), sharex=False, sharey=False, height=3.6,
                         aspect=1.25, **kw)


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
    g = _grid(ok, "facet", hue="label")
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
    g = _grid(ok, "facet", hue="label")
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
    """Exact variance along ``key`` for the Gaussian problems where it is known (score function,
    EMA/LOO baselines, reparameterization, measure-valued on the quadratic)."""
    from estimators import make_estimator

    from .exact_variance import exact_variance, measure_valued_variance_quadratic
    from .problems import make_problem

    out = {}
    if d.empty or not str(d["problem"].iloc[0]).startswith("gaussian_"):
        return out
    lo, hi = d[key].min(), d[key].max()
    grid = np.linspace(lo, hi, 121)
    for label, rows in d.groupby("label"):
        r = rows.iloc[0]
        opts = {c.split(".", 1)[1]: r[c] for c in rows.columns if c.startswith("problem.") and not pd.isna(r[c])}
        opts = {k: (int(v) if k == "dim" else float(v)) for k, v in opts.items()}
        est_opts = {c.split(".", 1)[1]: r[c] for c in rows.columns if c.startswith("estimator.") and not pd.isna(r[c])}
        est_opts = {k: (bool(v) if k == "coupling" else v) for k, v in est_opts.items()}
        try:
            estimator = make_estimator(r["estimator"], est_opts)
            ys = []
            for value in grid:
                problem = make_problem(r["problem"], {**opts, key.split(".", 1)[1]: float(value)})
                if estimator.name == "measure_valued":
                    if problem.name != "gaussian_quadratic":
                        raise NotImplementedError
                    v = measure_valued_variance_quadratic(problem, int(r["n_samples"]), estimator.coupling)
                else:
                    v = exact_variance(problem, estimator, int(r["n_samples"]), int(r.get("n_replicates", 2)))
                ys.append(v[r["param"]])
        except (NotImplementedError, ValueError, TypeError):
            continue
        out[label] = (grid, np.array(ys))
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
    g = _grid(agg, "problem", hue="label")
    g.map_dataframe(sns.lineplot, x=x, y="mse", marker="o", errorbar=None, sort=False)
    for problem, ax in g.axes_dict.items():
        ax.set(xscale="log", yscale="log", ylabel="MSE of one estimate",
               xlabel="time per estimate (s)" if have_time else "evaluations of f per estimate")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    g.add_legend(title="estimator")
    g.set_titles("{col_name}")
    note = "points along a line: n_samples; lower left is better"
    return g.figure, note if have_time else note + "; no timings, so against evaluations of f"


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
    ("accuracy_vs_cost", "Accuracy against cost",
     "MSE of one estimate against its wall-clock time, per problem: which estimator gives the most accurate "
     "gradient per second (the table below compares them at equal work).", fig_accuracy_vs_cost),
]


# ----------------------------------------------------------------------------- tables


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
    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- writing


def build(paths: list[str | Path], out_dir: str | Path | None = None) -> Report:
    df = load(paths)
    first = Path(paths[0])
    out = Path(out_dir) if out_dir else (first if first.is_dir() else first.parent)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(df, out)
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    for name, title, caption, fn in FIGURES:
        item = Figure(name, title, caption)
        try:
            fig, note = fn(df)
        except Exception as e:  # a figure that fails must not lose the others
            fig, note = None, f"could not be drawn: {type(e).__name__}: {e}"
        if fig is None:
            item.skipped = note
        else:
            item.path = out / f"{name}.png"
            fig.savefig(item.path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            if note:
                item.caption += f" ({note})"
        report.figures.append(item)
    write_markdown(report)
    write_html(report)
    return report


def _sections(report: Report):
    df = report.df
    n_jobs = df.drop_duplicates(["source", "job"]).shape[0] if "job" in df else len(df)
    yield "summary", f"{n_jobs} jobs from {', '.join(sorted(df['source'].unique()))}"
    yield "best", best_at_equal_work(df)
    yield "not_ok", not_ok_jobs(df)
    yield "config", configuration(df)
    yield "env", environment(df)


def write_markdown(report: Report) -> Path:
    sec = dict(_sections(report))
    lines = ["# Gradient estimator report", "", sec["summary"], ""]
    for f in report.figures:
        lines += [f"## {f.title}", ""]
        lines += [f"![{f.title}]({f.path.name})", "", f.caption, ""] if f.path else [f"*Skipped: {f.skipped}.*", ""]
    lines += ["## Best estimator at equal work", "",
              "Lowest `work_variance` (variance × evaluations of f) per problem, parameter and n_samples, among "
              "estimators without significant bias.", "", markdown_table(sec["best"]), ""]
    lines += ["## Jobs not ok", "", markdown_table(sec["not_ok"]), ""]
    lines += ["## Configuration", "", markdown_table(sec["config"]), ""]
    lines += ["## Environment", "", markdown_table(sec["env"]), ""]
    path = report.out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_html(report: Report) -> Path:
    sec = dict(_sections(report))
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Gradient estimator report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:100%}.note{color:#666}</style></head><body>",
             "<h1>Gradient estimator report</h1>", f"<p>{html.escape(sec['summary'])}</p>"]
    for f in report.figures:
        parts.append(f"<h2>{html.escape(f.title)}</h2>")
        if f.path:
            data = base64.b64encode(f.path.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(f.title)}' src='data:image/png;base64,{data}'>")
            parts.append(f"<p>{html.escape(f.caption)}</p>")
        else:
            parts.append(f"<p class='note'>Skipped: {html.escape(f.skipped)}.</p>")
    for key, title in [("best", "Best estimator at equal work"), ("not_ok", "Jobs not ok"),
                       ("config", "Configuration"), ("env", "Environment")]:
        table = sec[key]
        parts.append(f"<h2>{title}</h2>")
        parts.append(table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}") if not table.empty
                     else "<p class='note'>(none)</p>")
    parts.append("</body></html>")
    path = report.out_dir / "report.html"
    path.write_text("\n".join(parts))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="sweep folders or results.csv files")
    parser.add_argument("--out", default=None, help="folder for the report (default: the first input's folder)")
    args = parser.parse_args(argv)
    try:
        report = build(args.paths, args.out)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in report.figures:
        print(f.path if f.path else f"skipped {f.name}: {f.skipped}")
    print(report.out_dir / "report.md")
    print(report.out_dir / "report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
