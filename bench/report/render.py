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
from .loading import load
from .tables import best_at_equal_work, configuration, environment, markdown_table, not_ok_jobs


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


def draw_figures(report: Report, figures=FIGURES) -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    for name, title, caption, fn in figures:
        item = Figure(name, title, caption)
        try:
            fig, note = fn(report.df)
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


def build(paths: list[str | Path], out_dir: str | Path | None = None) -> Report:
    df = load(paths)
    first = Path(paths[0])
    out = Path(out_dir) if out_dir else (first if first.is_dir() else first.parent)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(df, out)
    draw_figures(report)
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
