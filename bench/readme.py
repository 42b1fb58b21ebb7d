"""The README's measured tables, written from the committed result files:
``python -m bench.readme [--check]``.

Every figure the README quotes in a table between ``<!-- NAME -->`` and ``<!-- /NAME -->``
comes from a file under ``results/`` (a reference sweep, the calibration, the regression
benchmarks' calibration, the speed benchmark), so a re-run of the command that made the file and
of this one refreshes the README, and ``--check`` (run by the tests) fails when the README and the
files disagree. A section whose file is missing is left as it is, with a note on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from .results import is_true, mean_with_interval, read_table, with_se

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
REFERENCE = RESULTS / "reference"


class Missing(Exception):
    """A section's result file is not there (not generated on this checkout)."""


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise Missing(str(path.relative_to(ROOT)))
    return read_table(path)


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False)


def training_finals(name: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per job of a reference training sweep: its estimator, the swept keys in ``extra``, the final
    objective and gap (mean ± 95 % over its runs), diverged runs and run-steps per second."""
    df = _read(REFERENCE / name / "results.csv")
    rows = []
    for _, runs in df.groupby("job", sort=True):
        r = runs.iloc[0]
        ok = runs[runs["status"] == "ok"]
        row = {"estimator": r["label"]}
        for key in extra:
            row[key] = r[key]
        row.update({"n_samples": int(r["n_samples"]), "steps": int(r["steps"]),
                    "final objective": mean_with_interval(ok["final_objective"])})
        if ok["final_gap"].notna().any():
            row["final gap"] = mean_with_interval(ok["final_gap"], ".3g")
        row["runs diverged"] = f"{int((runs['status'] == 'diverged').sum())} of {len(runs)}"
        row["run-steps/s"] = f"{r['steps_per_s']:.3g}"
        rows.append(row)
    return pd.DataFrame(rows)


def _swept(name: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
    df = _read(REFERENCE / name / "results.csv")
    return tuple(c for c in candidates if c in df and df[c].nunique(dropna=True) > 1)


def training_reference() -> str:
    parts = []
    for name, title in (("train_policy", "The question's policy network (`policy_mlp`, reward maximised)"),
                        ("train_quadratic", "The Gaussian quadratic (cost minimised)")):
        keys = _swept(name, ("optimizer", "optimizer.lr", "n_samples"))
        parts.append(f"{title}, `python -m bench.reference --only {name}` "
                     f"([report](results/reference/{name}/report.md)):\n\n"
                     + _markdown(training_finals(name, tuple(k for k in keys if k != "n_samples")))
                     + f"\n\n![learning curves](results/reference/{name}/curve_steps.png)")
    return "\n\n".join(parts)


def group_baselines_table(G: int = 4) -> str:
    df = _read(REFERENCE / "group_baselines" / "results.csv")
    df = df[(df["n_samples"] == G) & (df["status"] == "ok")]
    total = df[df["param"] == "total"]
    table = pd.DataFrame({
        "estimator": total["label"],
        "variance (total)": [with_se(v, s) for v, s in zip(total["variance"], total["variance_se"])],
        "bias": [with_se(v, s) for v, s in zip(total["bias"], total["bias_se"])],
        "bias test p": total["bias_p_value"].map(lambda p: f"{p:.2g}"),
        "flagged": total["bias_significant"].map(lambda b: "yes" if is_true(b) else "no"),
        "cosine to exact": total["cosine_to_exact"].map(lambda v: f"{v:.5f}"),
        "norm ratio": total["norm_ratio_to_exact"].map(lambda v: f"{v:.4f}"),
    })
    comp = df[df["row_kind"] == "component"]
    shares = comp.pivot_table(index="label", columns="param", values="update_share", sort=False)
    exact = comp.groupby("param", sort=False)["exact_share"].first()
    shares.loc["exact gradient"] = exact
    if "success_at_theta0" in comp:  # the problem's success probability of each prompt at θ0
        success = json.loads(str(comp["success_at_theta0"].iloc[0]))
        shares.loc["success probability at θ0"] = pd.Series(success, index=exact.index)
    shares = shares.reset_index().rename(columns={"label": "share of the mean update"})
    shares = shares.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v)
    return (f"R = {int(total['n_replicates'].iloc[0]):.0e} estimates of G = {G} completions per prompt:\n\n"
            + _markdown(table) + "\n\nEach prompt's share of the mean update (`<part, whole> / |whole|²`; "
            "the last row, each prompt's probability of a correct completion at θ0):\n\n" + _markdown(shares))


def group_training() -> str:
    return _markdown(training_finals("train_group_baselines")) + (
        "\n\n![training the sequence policy](results/reference/train_group_baselines/curve_steps.png)")


def bayes_figure() -> str:
    _read(REFERENCE / "train_bayes_logreg" / "results.csv")
    return "![gradient variance along training](results/reference/train_bayes_logreg/variance_along_training.png)"


def reinmax_figure() -> str:
    return (_markdown(training_finals("train_reinmax_polynomial"))
            + "\n\n![ReinMax's polynomial toy](results/reference/train_reinmax_polynomial/curve_steps.png)")


def relax_table() -> str:
    df = _read(REFERENCE / "relax_toy" / "results.csv")
    total = df[(df["param"] == "total") & (df["status"] == "ok")]
    variance = pd.DataFrame({
        "estimator": total["label"], "n_samples": total["n_samples"],
        "variance": [with_se(v, s) for v, s in zip(total["variance"], total["variance_se"])],
        "bias": [with_se(v, s) for v, s in zip(total["bias"], total["bias_se"])],
        "flagged": total["bias_significant"].map(lambda b: "yes" if is_true(b) else "no"),
    })
    return ("Variance at θ0 (R = 1e5):\n\n" + _markdown(variance) + "\n\nTraining (2000 steps, Adam 0.01):\n\n"
            + _markdown(training_finals("train_relax_toy"))
            + "\n\n![RELAX toy learning curves](results/reference/train_relax_toy/curve_steps.png)")


def calibration_table() -> str:
    from .calibrate import markdown_table

    return markdown_table(_read(RESULTS / "calibration" / "calibration.csv"))


def floor_table() -> str:
    from .calibrate import markdown_table

    frames = [_read(RESULTS / "calibration" / f) for f in ("floor.csv", "floor_ema.csv")]
    df = pd.concat(frames, ignore_index=True).sort_values(["case", "n_replicates"], kind="stable")
    return markdown_table(df)


def benchcheck_table() -> str:
    path = RESULTS / "benchmarks" / "calibration.md"
    if not path.is_file():
        raise Missing(str(path.relative_to(ROOT)))
    return "\n".join(line for line in path.read_text().splitlines() if line.startswith("|"))


def perf_table() -> str:
    from .perf import markdown_table, trainer_markdown

    df = _read(RESULTS / "perf" / "perf.csv")
    r = df.iloc[0]
    head = (f"torch {r['torch_version']}, {int(r['threads'])} threads, float32, {r.get('machine', 'cpu')}; each "
            "figure the median of interleaved rounds, `spread` the (max - min) / median of the harness's rounds:")
    out = [head, "", markdown_table(df)]
    trainer = RESULTS / "perf" / "trainer.csv"
    if trainer.is_file():
        out += ["", trainer_markdown(pd.read_csv(trainer))]
    out += _chunk_table(RESULTS / "perf" / "chunks.csv")
    if "peak_rss_mb_1e6x100" in df and pd.notna(r["peak_rss_mb_1e6x100"]):
        note = f"Memory: `n_replicates=1e6, n_samples=100` (1e8 samples) peaks at {r['peak_rss_mb_1e6x100']:.0f} MB resident"
        if "import_rss_mb" in df and pd.notna(r["import_rss_mb"]):
            note += f", of which {r['import_rss_mb']:.0f} MB is importing torch"
        out += ["", note + " (`VmHWM` of a fresh process)."]
    return "\n".join(out)


def _chunk_table(path: Path) -> list[str]:
    """The chunk-size sweep (``bench.perf --chunk-sweep``) as README lines; none without the file."""
    if not path.is_file():
        return []
    df = pd.read_csv(path)
    cols = {"chunk_elements": "chunk_elements", "harness_per_s": "harness /s", "compiled_per_s": "compiled /s",
            "closed_form_per_s": "closed form /s", "peer_per_s": "optax + jax.jit /s"}
    c = df[[k for k in cols if k in df]].rename(columns=cols)
    c["chunk_elements"] = [f"2^{int(v).bit_length() - 1}" for v in c["chunk_elements"]]
    return ["", f"The chunk size (score function, `n_samples=1`, R = {int(df['n_replicates'].iloc[0]):.0e}, shorter "
            "rounds; `python -m bench.perf --chunk-sweep`):", "", c.to_markdown(index=False, floatfmt=".3g")]


def perf_cuda_table() -> str:
    """The GPU's speed table (``bench.perf --device cuda``), its trainer table, the chunk-size sweep
    and the peak GPU memory at the default chunk, from ``results/perf/*cuda*.csv``."""
    from .perf import markdown_table, trainer_markdown

    df = _read(RESULTS / "perf" / "perf_cuda.csv")
    r = df.iloc[0]
    out = [f"torch {r['torch_version']}, float32, {r['machine']}, default chunk ({int(r['chunk_elements']):,} "
           "elements); each figure the median of interleaved rounds:", "", markdown_table(df)]
    trainer = RESULTS / "perf" / "trainer_cuda.csv"
    if trainer.is_file():
        out += ["", "Both loops on the GPU:", "", trainer_markdown(pd.read_csv(trainer))]
    out += _chunk_table(RESULTS / "perf" / "chunks_cuda.csv")
    memory = RESULTS / "perf" / "chunks_cuda_memory.csv"
    if memory.is_file():
        m = pd.read_csv(memory)
        out += ["", "Peak GPU memory of a run at the default chunk (`torch.cuda.max_memory_allocated`): "
                + ", ".join(f"{x.estimator} on {x.problem} (n = {x.n_samples}) {x.peak_gib:.2f} GiB"
                            for x in m.itertuples()) + "."]
    return "\n".join(out)


SECTIONS: dict[str, Callable[[], str]] = {
    "calibration-table": calibration_table,
    "floor-table": floor_table,
    "benchcheck-table": benchcheck_table,
    "training-reference": training_reference,
    "group-baselines-table": group_baselines_table,
    "group-training": group_training,
    "bayes-figure": bayes_figure,
    "reinmax-figure": reinmax_figure,
    "relax-table": relax_table,
    "perf-table": perf_table,
    "perf-cuda-table": perf_cuda_table,
}


def fill(text: str, sections: dict[str, Callable[[], str]] = SECTIONS) -> tuple[str, list[str]]:
    """``text`` with every known section between its markers rewritten; the sections left as
    they were (a missing file) are returned with the reason."""
    skipped = []
    for name, make in sections.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        if start not in text or end not in text:
            skipped.append(f"{name}: no markers in the README")
            continue
        try:
            body = make()
        except Missing as e:
            skipped.append(f"{name}: {e} is missing")
            continue
        indent = text[text.rfind("\n", 0, text.index(start)) + 1:text.index(start)]
        body = "\n".join(indent + line if line else line for line in body.splitlines())
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{start}\n{body}\n{indent}{end}{after}"
    return text, skipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the README differs from the files")
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    args = parser.parse_args(argv)
    path = Path(args.readme)
    old = path.read_text()
    new, skipped = fill(old)
    for line in skipped:
        print(f"left as it is: {line}", file=sys.stderr)
    if args.check:
        if new != old:
            print(f"{path.name} is out of date with results/: run python -m bench.readme", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
