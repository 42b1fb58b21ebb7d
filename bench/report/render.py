"""Rendering a report: the figures as PNG files, ``report.md`` (renders on a code-hosting site)
and ``report.html`` (figures embedded; opens in a browser with no server)."""

from __future__ import annotations

import base64
import html
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .figures import FIGURES
from .loading import load, load_exact_curves
from .tables import best_at_equal_work, configuration, environment, markdown_table, not_ok_jobs
from .training import TRAINING_FIGURES, is_training, load_training, time_to_target


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
    kind: str = "measurement"  # or "training" (curves.csv of python -m bench.train)
    extra: pd.DataFrame | None = None  # what the figures draw beside df: the exact curves, or (training) the variance curves


def draw_figures(report: Report, figures=FIGURES) -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    for i, (name, title, caption, fn) in enumerate(figures, start=1):
        print(f"figure {i} of {len(figures)}: {name}", file=sys.stderr, flush=True)  # a large sweep takes minutes
        item = Figure(name, title, caption)
        try:
            fig, note = fn(report.df, report.extra)
        except Exception as e:  # a figure that fails must not lose the others; it is named, not hidden
            fig, note = None, f"could not be drawn: {type(e).__name__}: {e}"
            print(f"warning: figure {name} {note}", file=sys.stderr)
        if fig is None:
            item.skipped = note
        else:
            item.path = report.out_dir / f"{name}.png"
            fig.savefig(item.path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            if note:
                item.caption += f" ({note})"
        report.figures.append(item)


def build(paths: list[str | Path], out_dir: str | Path | None = None, allow_partial: bool = False) -> Report:
    first = Path(paths[0])
    out = Path(out_dir) if out_dir else (first if first.is_dir() else first.parent)
    if all(is_training(p) for p in paths):
        curves, variance = load_training(paths, allow_partial)
        report = Report(curves, out, kind="training", extra=variance)
    else:
        report = Report(load(paths, allow_partial), out, extra=load_exact_curves(paths))
    out.mkdir(parents=True, exist_ok=True)
    draw_figures(report, TRAINING_FIGURES if report.kind == "training" else FIGURES)
    write_markdown(report)
    write_html(report)
    return report


def _sections(report: Report):
    """``(key, title, intro, table)`` for each table section of the report."""
    df = report.df
    if report.kind == "training":
        diverged = df[df["status"] == "diverged"][["job", "run", "estimator", "problem", "step"]]
        yield ("target", "Steps, evaluations and seconds to reach a target gap",
               "First logged step at which a run's gap to the optimum is at most the target (a tenth of the "
               "initial gap); mean ± 95 % interval over the runs that reach it.", time_to_target(df))
        yield "not_ok", "Runs that diverged", "", diverged.rename(columns={"step": "diverged at step"})
    else:
        yield ("best", "Best estimator at equal work",
               "Lowest `work_variance` (variance × evaluations of f) per problem, parameter and n_samples, among "
               "estimators without significant bias.", best_at_equal_work(df))
        yield "not_ok", "Jobs not ok", "", not_ok_jobs(df)
    yield "config", "Configuration", "", configuration(df)
    yield "env", "Environment", "", environment(df)


def _summary(report: Report) -> str:
    df = report.df
    n_jobs = df.drop_duplicates(["source", "job"]).shape[0] if "job" in df else len(df)
    runs = f", {df.groupby(['source', 'job', 'run']).ngroups} runs" if report.kind == "training" else ""
    return f"{n_jobs} jobs{runs} from {', '.join(sorted(_shown(s) for s in df['source'].unique()))}"


def _shown(source: str) -> str:
    """A source path relative to the working directory where it lies under it (so that a committed
    report names no machine's folders)."""
    path = Path(source)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return source


def write_markdown(report: Report) -> Path:
    title = "Training report" if report.kind == "training" else "Gradient estimator report"
    lines = [f"# {title}", "", _summary(report), ""]
    for f in report.figures:
        lines += [f"## {f.title}", ""]
        lines += [f"![{f.title}]({f.path.name})", "", f.caption, ""] if f.path else [f"*Skipped: {f.skipped}.*", ""]
    for _, heading, intro, table in _sections(report):
        lines += [f"## {heading}", ""] + ([intro, ""] if intro else []) + [markdown_table(table), ""]
    path = report.out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_html(report: Report) -> Path:
    title = "Training report" if report.kind == "training" else "Gradient estimator report"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:100%}.note{color:#666}</style></head><body>",
             f"<h1>{title}</h1>", f"<p>{html.escape(_summary(report))}</p>"]
    for f in report.figures:
        parts.append(f"<h2>{html.escape(f.title)}</h2>")
        if f.path:
            data = base64.b64encode(f.path.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(f.title)}' src='data:image/png;base64,{data}'>")
            parts.append(f"<p>{html.escape(f.caption)}</p>")
        else:
            parts.append(f"<p class='note'>Skipped: {html.escape(f.skipped)}.</p>")
    for _, heading, intro, table in _sections(report):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if intro:
            parts.append(f"<p>{html.escape(intro)}</p>")
        parts.append(table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}") if not table.empty
                     else "<p class='note'>(none)</p>")
    parts.append("</body></html>")
    path = report.out_dir / "report.html"
    path.write_text("\n".join(parts))
    return path
