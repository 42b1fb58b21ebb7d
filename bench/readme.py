"""The generated sections of the README and of the folders' READMEs under ``results/``:
``python -m bench.readme [--check]``.

Every table between ``<!-- NAME -->`` and ``<!-- /NAME -->`` is written by this module: the
estimators, problems and applicability tables from the registered classes and presets
(:mod:`bench.catalog`), the measured tables from a file under ``results/`` (a reference sweep, the
calibration, the regression benchmarks' calibration, the speed benchmark). So a new component, or a
re-run of the command that made a file, followed by this command refreshes every page, and
``--check`` (run by the tests) fails when a page and its sources disagree. A table that only lacks
a component added since it was written is reported (``missing``), not failed: the addition is
one file, and this command brings the pages up to date. A section whose file is missing is left as
it is, with a note on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from .calibrate import markdown_table as calibration_markdown
from .catalog import TABLES
from .microbatching import CONVENTIONS_FILE, FILE as MICROBATCHING_FILE, conventions_markdown
from .microbatching import markdown_table as microbatching_markdown
from .perf import markdown_table as perf_markdown, trainer_markdown
from .perf.workloads import workload_markdown
from .presets import preset_names
from .readme_latent import (digits_vae_categorical_table, digits_vae_table, digits_vae_training, iwae_table,
                            rsample_error_table, sampling_table)
from .reference import runs
from .results import CURVES_FILE, is_true, mean_with_interval, read_table, with_se

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
REFERENCE = RESULTS / "reference"


class Missing(Exception):
    """A section's result file is not there (not generated on this checkout)."""


class Page:
    """Where a section is written: its links are relative to this page's folder."""

    def __init__(self, path: Path):
        self.path = path

    def link(self, target: str) -> str:
        return os.path.relpath(ROOT / target, self.path.parent)


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


def reference_command(name: str) -> str:
    """The command that reproduces a reference sweep (into a folder of its own)."""
    module, overrides = runs()[name]
    return f"python -m {module} -m {' '.join(overrides)}"


def training_reference(page: Page) -> str:
    parts = []
    for name, title in (("train_policy", "The question's policy network (`policy_mlp`, reward maximised)"),
                        ("train_quadratic", "The Gaussian quadratic (cost minimised)")):
        keys = _swept(name, ("optimizer", "optimizer.lr", "n_samples"))
        parts.append(f"{title}, `{reference_command(name)}` "
                     f"([report]({page.link(f'results/reference/{name}/report.md')})):\n\n"
                     + _markdown(training_finals(name, tuple(k for k in keys if k != "n_samples")))
                     + f"\n\n![learning curves]({page.link(f'results/reference/{name}/curve_steps.png')})")
    return "\n\n".join(parts)


def _group_baselines(G: int | None = None, name: str = "group_baselines") -> pd.DataFrame:
    df = _read(REFERENCE / name / "results.csv")
    df = df[df["status"] == "ok"]
    return df if G is None else df[df["n_samples"] == G]


def _rewards(df: pd.DataFrame) -> list[str]:
    """The sweep's rewards, the sparse verifier first (a sweep of one reward: that one)."""
    return sorted(df["problem.reward"].dropna().unique(), key=lambda r: (r != "verifier", r))


def group_baselines_table(page: Page, G: int = 4, name: str = "group_baselines") -> str:
    df = _group_baselines(G, name)
    total = df[df["param"] == "total"]
    rewards = _rewards(total)
    total = pd.concat([total[total["problem.reward"] == r] for r in rewards])
    table = pd.DataFrame({
        "reward": total["problem.reward"],
        "estimator": total["label"],
        "aggregation": total["estimator.aggregation"].fillna(""),
        "variance (total)": [with_se(v, s) for v, s in zip(total["variance"], total["variance_se"])],
        "bias": [with_se(v, s) for v, s in zip(total["bias"], total["bias_se"])],
        "bias test p": total["bias_p_value"].map(lambda p: f"{p:.2g}"),
        "flagged": total["bias_significant"].map(lambda b: "yes" if is_true(b) else "no"),
        "cosine to exact": total["cosine_to_exact"].map(lambda v: f"{v:.5f}"),
        "norm ratio": total["norm_ratio_to_exact"].map(lambda v: f"{v:.4f}"),
    })
    if len(rewards) == 1:
        table = table.drop(columns="reward")
    return f"R = {int(total['n_replicates'].iloc[0]):.0e} estimates of G = {G} completions per prompt:\n\n" + _markdown(table)


def group_summary_table(page: Page, G: int = 4) -> str:
    """The README's short table: per preset at G, both rewards side by side (verifier / match):
    flagged by the bias test, cosine to the exact gradient and norm ratio of the mean estimate."""
    total = _group_baselines(G)
    total = total[total["param"] == "total"]
    rewards = _rewards(total)
    by = {r: total[total["problem.reward"] == r].set_index("label") for r in rewards}
    rows = []
    for label in by[rewards[0]].index:
        cells = [by[r].loc[label] for r in rewards]
        rows.append({"estimator": label, "aggregation": cells[0].get("estimator.aggregation") or "",
                     "flagged": " / ".join("yes" if is_true(c["bias_significant"]) else "no" for c in cells),
                     "cosine to exact": " / ".join(f"{c['cosine_to_exact']:.3f}" for c in cells),
                     "norm ratio": " / ".join(f"{c['norm_ratio_to_exact']:.3f}" for c in cells),
                     "variance": " / ".join(f"{c['variance']:.3g}" for c in cells)})
    table = pd.DataFrame(rows).fillna("")
    return (f"At G = {G}, R = {int(total['n_replicates'].iloc[0]):.0e} estimates each, {' / '.join(rewards)} reward "
            "(flagged: the bias test at family-wise 0.1 %):\n\n" + _markdown(table))


def _direction_rows(total: pd.DataFrame, key: str, header: Callable, flagged: bool = False) -> list[dict]:
    """One row per estimator: for each value of ``key`` (a column ``header(value)``), the cosine to
    the exact gradient / the norm ratio of the mean estimate, `` *`` where the bias test flags it
    (``flagged``)."""
    rows = []
    for label, by in total.groupby("label", sort=False):
        row = {"estimator": label}
        for _, r in by.sort_values(key).iterrows():
            row[header(r[key])] = (f"{r['cosine_to_exact']:.3f} / {r['norm_ratio_to_exact']:.3f}"
                                   + (" *" if flagged and is_true(r["bias_significant"]) else ""))
        rows.append(row)
    return rows


def group_across_sizes_table(page: Page) -> str:
    """Cosine to the exact gradient and norm ratio of every group baseline's mean estimate, per G."""
    total = _group_baselines()
    total = total[total["param"] == "total"]
    rows = [{"reward": reward, **row} for reward in _rewards(total)
            for row in _direction_rows(total[total["problem.reward"] == reward], "n_samples", lambda v: f"G = {int(v)}")]
    return ("Cosine to the exact gradient / norm ratio of the mean estimate (R = 1e5 each; 1.000 / 1.000 is "
            "unbiased up to noise, see the bias test in the report):\n\n" + _markdown(pd.DataFrame(rows)))


def group_shares_table(page: Page, G: int = 4) -> str:
    """Each prompt's share of the mean update of every group baseline, at G, and of the exact gradient,
    per reward."""
    parts = []
    all_comp = _group_baselines(G)
    all_comp = all_comp[all_comp["row_kind"] == "component"]
    for reward in _rewards(all_comp):
        comp = all_comp[all_comp["problem.reward"] == reward]
        shares = comp.pivot_table(index="label", columns="param", values="update_share", sort=False)
        exact = comp.groupby("param", sort=False)["exact_share"].first()
        shares.loc["exact gradient"] = exact
        if "success_at_theta0" in comp and reward == "verifier":  # each prompt's success probability at θ0
            success = json.loads(str(comp["success_at_theta0"].iloc[0]))
            shares.loc["success probability at θ0"] = pd.Series(success, index=exact.index)
        shares = shares.reset_index().rename(columns={"label": f"share of the mean update ({reward})"})
        parts.append(_markdown(shares.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v)))
    return (f"Each prompt's share of the mean update at G = {G} (`<part, whole> / |whole|²`; under the verifier "
            "reward, the last row is each prompt's probability of a correct completion at θ0):\n\n"
            + "\n\n".join(parts))


def group_lengths_table(page: Page) -> str:
    return group_baselines_table(page, G=8, name="group_lengths")


def group_off_policy_table(page: Page) -> str:
    """Per off-policy loss and staleness: cosine to the exact on-policy gradient / norm ratio, and
    whether the bias test flags it."""
    total = _group_baselines(name="group_off_policy")
    total = total[total["param"] == "total"]
    rows = _direction_rows(total, "problem.behaviour_shift", lambda v: f"shift {v:g}", flagged=True)
    return (f"Cosine to the exact gradient / norm ratio of the mean of R = {int(total['n_replicates'].iloc[0]):.0e} "
            "estimates at G = 4 (* flagged by the bias test):\n\n" + _markdown(pd.DataFrame(rows))
            + f"\n\n![bias, direction and magnitude against the staleness]"
              f"({page.link('results/reference/group_off_policy/direction.png')})")


def group_off_policy_steps_table(page: Page) -> str:
    """The same, with pi_old the policy k Adam steps earlier."""
    total = _group_baselines(name="group_off_policy_steps")
    total = total[total["param"] == "total"]
    rows = _direction_rows(total, "problem.behaviour_steps", lambda v: f"{int(v)} steps", flagged=True)
    return (f"Cosine to the exact gradient / norm ratio of the mean of R = {int(total['n_replicates'].iloc[0]):.0e} "
            "estimates at G = 4, pi_old k Adam steps (lr 0.01) behind (* flagged by the bias test):\n\n"
            + _markdown(pd.DataFrame(rows))
            + f"\n\n![bias, direction and magnitude against the steps pi_old is behind]"
              f"({page.link('results/reference/group_off_policy_steps/direction.png')})")


def group_kl_table(page: Page) -> str:
    return group_baselines_table(page, G=4, name="group_kl")


def microbatching_section(page: Page) -> str:
    return microbatching_markdown(_read(REFERENCE / "group_baselines" / MICROBATCHING_FILE))


def std_conventions_section(page: Page) -> str:
    return conventions_markdown(_read(REFERENCE / "group_baselines" / CONVENTIONS_FILE))


def group_training(page: Page) -> str:
    return _markdown(training_finals("train_group_baselines")) + (
        f"\n\n![training the sequence policy]({page.link('results/reference/train_group_baselines/curve_steps.png')})")


def group_length_drift(page: Page) -> str:
    """Per estimator of ``train_group_lengths``: the exact mean completion length and success
    probability at the start and after the last step (mean ± 95 % over runs), and the objective."""
    curves = _read(REFERENCE / "train_group_lengths" / CURVES_FILE)
    curves = curves[curves["status"] == "ok"]
    rows = []
    for label, by in curves.groupby("label", sort=False):
        first, last = by[by["step"] == 0], by[by["step"] == by["step"].max()]
        rows.append({"estimator": label,
                     "aggregation": by["estimator.aggregation"].fillna("").iloc[0] if "estimator.aggregation" in by else "",
                     "mean length at θ0": f"{first['metric.mean_length'].mean():.3f}",
                     f"mean length after {int(last['step'].iloc[0])} steps": mean_with_interval(last["metric.mean_length"]),
                     "success probability": mean_with_interval(last["metric.success"]),
                     "expected reward (4 prompts)": mean_with_interval(last["objective"]),
                     "runs": f"{last['run'].nunique()}"})
    return (_markdown(pd.DataFrame(rows)) + "\n\n![mean completion length and success along training]"
            f"({page.link('results/reference/train_group_lengths/metric_curves.png')})")


def bayes_figure(page: Page) -> str:
    _read(REFERENCE / "train_bayes_logreg" / "results.csv")
    return (f"![gradient variance along training]"
            f"({page.link('results/reference/train_bayes_logreg/variance_along_training.png')})")


def reinmax_figure(page: Page) -> str:
    return (_markdown(training_finals("train_reinmax_polynomial"))
            + f"\n\n![ReinMax's polynomial toy]({page.link('results/reference/train_reinmax_polynomial/curve_steps.png')})")


def relax_table(page: Page) -> str:
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
            + f"\n\n![RELAX toy learning curves]({page.link('results/reference/train_relax_toy/curve_steps.png')})")


def perf_workloads_table(page: Page) -> str:
    return workload_markdown(_read(RESULTS / "perf" / "workloads.csv"))


def calibration_table(page: Page) -> str:
    return calibration_markdown(_read(RESULTS / "calibration" / "calibration.csv"))


def floor_table(page: Page) -> str:
    frames = [_read(RESULTS / "calibration" / f) for f in ("floor.csv", "floor_ema.csv")]
    df = pd.concat(frames, ignore_index=True).sort_values(["case", "n_replicates"], kind="stable")
    return calibration_markdown(df)


def benchcheck_table(page: Page) -> str:
    path = RESULTS / "benchmarks" / "calibration.md"
    if not path.is_file():
        raise Missing(str(path.relative_to(ROOT)))
    return "\n".join(line for line in path.read_text().splitlines() if line.startswith("|"))


SUMMARY_COLUMNS = ("harness_per_s", "compiled_per_s", "peer_per_s", "harness_vs_naive", "compiled_vs_peer")


def perf_summary(page: Page) -> str:
    """The README's short speed table: a few rows and columns of ``results/perf/perf.csv``."""
    df = _read(RESULTS / "perf" / "perf.csv")
    r = df.iloc[0]
    quadratic = (df["problem"] == "gaussian_quadratic") & (df["dim"] == 1)
    rows = df[(df["n_replicates"] == 1e5) & (quadratic & df["n_samples"].isin([1, 10])
                                             | (df["problem"] == "policy_mlp") & (df["n_samples"] == 10))]
    return (f"torch {r['torch_version']}, {int(r['threads'])} threads, float32 ({r.get('machine', 'cpu')}); estimates "
            "per second, medians of interleaved rounds:\n\n" + perf_markdown(rows, only=SUMMARY_COLUMNS))


def perf_table(page: Page) -> str:
    df = _read(RESULTS / "perf" / "perf.csv")
    r = df.iloc[0]
    head = (f"torch {r['torch_version']}, {int(r['threads'])} threads, float32, {r.get('machine', 'cpu')}; each "
            "figure the median of interleaved rounds, `spread` the (max - min) / median of the harness's rounds:")
    out = [head, "", perf_markdown(df)]
    trainer = RESULTS / "perf" / "trainer.csv"
    if trainer.is_file():
        out += ["", trainer_markdown(read_table(trainer))]
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
    df = read_table(path)
    cols = {"chunk_elements": "chunk_elements", "harness_per_s": "harness /s", "compiled_per_s": "compiled /s",
            "closed_form_per_s": "closed form /s", "peer_per_s": "optax + jax.jit /s"}
    c = df[[k for k in cols if k in df]].rename(columns=cols)
    c["chunk_elements"] = [f"2^{int(v).bit_length() - 1}" for v in c["chunk_elements"]]
    return ["", f"The chunk size (score function, `n_samples=1`, R = {int(df['n_replicates'].iloc[0]):.0e}, shorter "
            "rounds; `python -m bench.perf --chunk-sweep`):", "", c.to_markdown(index=False, floatfmt=".3g")]


def perf_cuda_table(page: Page) -> str:
    """The GPU's speed table (``bench.perf --device cuda``), its trainer table, the chunk-size sweep
    and the peak GPU memory at the default chunk, from ``results/perf/*cuda*.csv``."""
    df = _read(RESULTS / "perf" / "perf_cuda.csv")
    r = df.iloc[0]
    out = [f"torch {r['torch_version']}, float32, {r['machine']}, default chunk ({int(r['chunk_elements']):,} "
           "elements); each figure the median of interleaved rounds:", "", perf_markdown(df)]
    trainer = RESULTS / "perf" / "trainer_cuda.csv"
    if trainer.is_file():
        out += ["", "Both loops on the GPU:", "", trainer_markdown(read_table(trainer))]
    out += _chunk_table(RESULTS / "perf" / "chunks_cuda.csv")
    memory = RESULTS / "perf" / "chunks_cuda_memory.csv"
    if memory.is_file():
        m = read_table(memory)
        out += ["", "Peak GPU memory of a run at the default chunk (`torch.cuda.max_memory_allocated`): "
                + ", ".join(f"{x.estimator} on {x.problem} (n = {x.n_samples}) {x.peak_gib:.2f} GiB"
                            for x in m.itertuples()) + "."]
    return "\n".join(out)


def _catalog(name: str) -> Callable[[Page], str]:
    table = TABLES[name]

    def make(page: Page, estimators: list[str] | None = None, problems: list[str] | None = None) -> str:
        return table(estimators, problems)
    return make


Section = Callable[..., str]
PAGES: dict[Path, dict[str, Section]] = {
    ROOT / "README.md": {
        "estimators-table": _catalog("estimators-table"), "problems-table": _catalog("problems-table"),
        "applicability-table": _catalog("applicability-table"),
        "group-summary-table": group_summary_table, "perf-summary": perf_summary,
    },
    RESULTS / "reference" / "README.md": {
        "training-reference": training_reference, "group-presets-table": _catalog("group-presets-table"),
        "group-baselines-table": group_baselines_table, "group-microbatching-table": microbatching_section,
        "group-shares-table": group_shares_table,
        "group-sizes-table": group_across_sizes_table, "group-lengths-table": group_lengths_table,
        "group-conventions-table": std_conventions_section, "group-training": group_training,
        "group-length-drift": group_length_drift, "group-kl-table": group_kl_table,
        "group-off-policy-table": group_off_policy_table, "group-off-policy-steps-table": group_off_policy_steps_table,
        "bayes-figure": bayes_figure,
        "reinmax-figure": reinmax_figure, "relax-table": relax_table,
        "digits-vae-table": digits_vae_table, "digits-vae-categorical-table": digits_vae_categorical_table,
        "digits-vae-training": digits_vae_training,
        "sampling-table": sampling_table, "rsample-error-table": rsample_error_table, "iwae-table": iwae_table,
    },
    RESULTS / "calibration" / "README.md": {"calibration-table": calibration_table, "floor-table": floor_table},
    RESULTS / "benchmarks" / "README.md": {"benchcheck-table": benchcheck_table},
    RESULTS / "perf" / "README.md": {"perf-table": perf_table, "perf-cuda-table": perf_cuda_table,
                                     "perf-workloads-table": perf_workloads_table},
}
COMPONENT_SECTIONS = frozenset({"estimators-table", "problems-table", "applicability-table"})


# What changes from one machine or run to the next (timings, the machine's name): the check compares
# everything else, so a page regenerated on another machine agrees with one written here.
MACHINE_COLUMNS = frozenset({
    "naive loop /s", "harness /s", "compiled /s", "closed form /s", "optax + jax.jit /s", "harness ÷ naive",
    "harness ÷ closed", "compiled ÷ closed", "harness ÷ peer", "compiled ÷ peer", "spread (harness)", "compile (s)",
    "peer's jit (s)", "the question's loop (run-steps/s)", "batched trainer (run-steps/s)", "ratio", "run-steps/s",
    "compares with a false alarm", "benchmarks falsely flagged", "2x slowdown flagged", "exact gradients /s",
    "GFLOP/s", "matmul GFLOP/s", "enumeration ÷ matmul time", "spread", "ceiling ÷ naive", "harness ÷ ceiling"})
MACHINE_LINES = ("torch ", "Memory:", "Peak GPU memory")
_CELL = re.compile(r"(?<!\\)\|")


def reproducible(body: str | None) -> str | None:
    """A section with the cells of :data:`MACHINE_COLUMNS` and the lines of :data:`MACHINE_LINES`
    blanked (every line stripped of its indentation)."""
    if body is None:
        return None
    out, blank, previous_row = [], set(), False
    for line in (raw.strip() for raw in body.splitlines()):
        if line.startswith(MACHINE_LINES):
            line = line.split(" ", 1)[0]
        elif line.startswith("|"):
            cells = [c.strip() for c in _CELL.split(line.strip("|"))]
            if not previous_row:  # a table's header
                blank = {i for i, c in enumerate(cells) if c in MACHINE_COLUMNS}
            elif not set("".join(cells)) <= set("-: "):
                cells = ["" if i in blank else c for i, c in enumerate(cells)]
            line = "|" + "|".join(cells) + "|"
        previous_row = line.startswith("|")
        out.append(line)
    return "\n".join(out)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def _body(text: str, name: str) -> str | None:
    start, end = _markers(name)
    if start not in text or end not in text:
        return None
    return "\n".join(line.strip() for line in text.split(start, 1)[1].split(end, 1)[0].strip().splitlines())


def fill(text: str, sections: dict[str, Section], page: Page | None = None) -> tuple[str, list[str]]:
    """``text`` with every known section between its markers rewritten; the sections left as
    they were (a missing file) are returned with the reason."""
    skipped = []
    for name, make in sections.items():
        start, end = _markers(name)
        if start not in text or end not in text:
            skipped.append(f"{name}: no markers in {page.path.name if page else 'the text'}")
            continue
        try:
            body = make(page) if page is not None else make()
        except Missing as e:
            skipped.append(f"{name}: {e} is missing")
            continue
        indent = text[text.rfind("\n", 0, text.index(start)) + 1:text.index(start)]
        body = "\n".join(indent + line if line else line for line in body.splitlines())
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{start}\n{body}\n{indent}{end}{after}"
    return text, skipped


def missing_components(text: str, name: str, make: Section, page: Page) -> list[str] | None:
    """For a component table that disagrees with the registry: the presets it lacks, when lacking
    them is the whole difference (``None`` when the table is wrong in what it shows)."""
    current = _body(text, name)
    named = set(re.findall(r"`([^`]+)`", current or ""))
    estimators = [e for e in preset_names("estimator") if e in named]
    problems = [p for p in preset_names("problem") if p in named]
    if reproducible(make(page, estimators, problems).strip()) != reproducible(current):
        return None
    shown = set(estimators) | set(problems)
    return [n for n in preset_names("estimator") + preset_names("problem") if n not in shown
            and (name != "problems-table" or n in preset_names("problem"))
            and (name != "estimators-table" or n in preset_names("estimator"))]


def check() -> tuple[list[str], list[str]]:
    """``(stale, missing)``: the sections that disagree with their sources, and the notes of
    component tables that only lack presets added since they were written."""
    stale, missing = [], []
    for path, sections in PAGES.items():
        page = Page(path)
        if not path.is_file():
            stale.append(f"{path.relative_to(ROOT)} does not exist")
            continue
        text = path.read_text()
        new, _ = fill(text, sections, page)
        if new == text:
            continue
        for name, make in sections.items():
            if reproducible(_body(fill(text, {name: make}, page)[0], name)) == reproducible(_body(text, name)):
                continue
            lacking = missing_components(text, name, make, page) if name in COMPONENT_SECTIONS else None
            if lacking is None:
                stale.append(f"{path.relative_to(ROOT)}: {name}")
            else:
                missing.append(f"{path.relative_to(ROOT)}: {name} lacks {', '.join(lacking)}")
    return stale, missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a page disagrees with its sources (a table that only lacks a new "
                             "component is reported, exit 0)")
    args = parser.parse_args(argv)
    if args.check:
        stale, missing = check()
        for line in missing:
            print(f"not yet on the page (run python -m bench.readme): {line}", file=sys.stderr)
        for line in stale:
            print(f"out of date with its sources (run python -m bench.readme): {line}", file=sys.stderr)
        return 1 if stale else 0
    for path, sections in PAGES.items():
        page = Page(path)
        old = path.read_text() if path.is_file() else ""
        new, skipped = fill(old, sections, page)
        for line in skipped:
            print(f"left as it is: {line}", file=sys.stderr)
        if new != old:
            path.write_text(new)
            print(f"written: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
