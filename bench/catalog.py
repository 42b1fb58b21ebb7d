"""The tables of what is registered, generated from the classes and presets (for the README, through
``python -m bench.readme``): the estimators (formula, what they need, options with defaults, presets),
the problems (theta, setting, options, presets) and which estimator applies to which problem.

Each table takes the estimator and problem presets to show (default: all), so the README's check
can tell a table that is wrong from one that lacks a component added since it was written.
"""

from __future__ import annotations

import re

import torch

from estimators import ESTIMATORS

from .config import CONF_DIR
from .presets import build, one_replicate, preset, preset_names
from .problems import PROBLEMS

NEEDS = {"rsample": "reparameterizable (`rsample`)", "exact_expectation": "a known E[f]",
         "sequence_lengths": "sequences (lengths)", "greedy": "a greedy completion",
         "reference_policy": "a reference policy (KL)", "behaviour_policy": "an older policy (off-policy)",
         "discrete": "discrete",
         "continuous": "continuous"}


def _cell(text: str) -> str:
    """Text for a table cell: its pipes escaped."""
    return re.sub(r"(?<!\\)\|", r"\\|", text)


def _summary(cls) -> str:
    return _cell(cls.summary or (cls.__doc__ or "").strip().splitlines()[0])


def _options(cls) -> str:
    parts = []
    for key, spec in cls.options_spec.items():
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        default = str(default).lower() if isinstance(default, bool) else default
        parts.append(f"`{key}={default}`" + (f" ({spec.doc})" if spec.doc else ""))
    return _cell("; ".join(parts))


def _presets_of(group: str, name: str, shown: list[str]) -> list[str]:
    return [p for p in shown if preset(group, p).get("name") == name]


def _needs(estimator) -> str:
    parts = [" or ".join(sorted(estimator.families)).replace("gaussian", "Gaussian").replace(
        "bernoulli", "Bernoulli")] if estimator.families else []
    parts += [NEEDS.get(r, r) for r in sorted(estimator.requires)]
    return ", ".join(parts) or "any density"


def estimators_table(estimators: list[str] | None = None, problems: list[str] | None = None) -> str:
    shown = preset_names("estimator") if estimators is None else estimators
    lines = ["| name | estimate (the gradient of its surrogate) | applies to | biased | options (defaults) | presets |",
             "|---|---|---|---|---|---|"]
    for name, cls in sorted(ESTIMATORS.items()):
        presets = _presets_of("estimator", name, shown)
        if not presets:
            continue
        built = {p: build("estimator", p) for p in presets}
        biased = {e.biased for e in built.values()}
        biased_text = "depends on its options" if len(biased) > 1 else ("yes" if biased.pop() else "no")
        needs = {}
        for p, e in built.items():
            needs.setdefault(_needs(e), []).append(f"`{p}`")
        needs_text = (next(iter(needs)) if len(needs) == 1 else
                      "; ".join(f"{need} ({', '.join(ps)})" for need, ps in needs.items()))
        others = ", ".join(f"`{p}`" for p in presets if p != name)
        lines.append(f"| `{name}` | {_summary(cls)} | {needs_text} | {biased_text} | {_options(cls)} | {others} |")
    return "\n".join(lines)


def problems_table(estimators: list[str] | None = None, problems: list[str] | None = None) -> str:
    shown = preset_names("problem") if problems is None else problems
    lines = ["| name | θ | distribution, cost | options (defaults) | presets |", "|---|---|---|---|---|"]
    for name, cls in sorted(PROBLEMS.items()):
        presets = _presets_of("problem", name, shown)
        if not presets:
            continue
        theta = list(cls().init_params("cpu", torch.float64))
        theta_text = ", ".join(f"`{t}`" for t in theta[:3]) + (f" … ({len(theta)} tensors)" if len(theta) > 3 else "")
        others = ", ".join(f"`{p}`" for p in presets if p != name)
        lines.append(f"| `{name}` | {theta_text} | {_summary(cls)} | {_options(cls)} | {others} |")
    return "\n".join(lines)


def applicability_table(estimators: list[str] | None = None, problems: list[str] | None = None) -> str:
    """Which estimator preset applies to which problem preset, with the evaluations of f one sample
    costs there (at the problems' defaults)."""
    problems = preset_names("problem") if problems is None else problems
    estimators = preset_names("estimator") if estimators is None else estimators
    lines = ["| estimator | " + " | ".join(f"`{p}`" for p in problems) + " |", "|---|" + "---|" * len(problems)]
    for ename in estimators:
        est = build("estimator", ename)
        cells = []
        for pname in problems:
            dist, caps = one_replicate(pname)
            cells.append("–" if est.applies_to(caps) is not None else f"✓ {est.evals_per_estimate(1, dist)}")
        lines.append(f"| `{ename}`{' (biased)' if est.biased else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _yaml_comment(group: str, name: str) -> str:
    """The leading comment of a preset's yaml, as one line."""
    path = CONF_DIR / group / f"{name}.yaml"
    lines = path.read_text().splitlines() if path.is_file() else []
    comment = []
    for line in lines:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    return " ".join(comment)


def group_presets_table(estimators: list[str] | None = None, problems: list[str] | None = None) -> str:
    """Every preset of ``group_advantage``: its centre, scale, aggregation and what it is (its yaml's
    comment); eps only where a scale uses it."""
    estimators = preset_names("estimator") if estimators is None else estimators
    lines = ["| preset | center | scale | aggregation | micro-batches | eps | what it is |", "|---|---|---|---|---|---|---|"]
    for name in estimators:
        spec = preset("estimator", name)
        if spec.get("name") != "group_advantage":
            continue
        est = build("estimator", name)
        lines.append(f"| `{name}`{' (biased)' if est.biased else ''} | {est.center} | {est.scale} | {est.aggregation} | "
                     f"{est.micro_batches} | {'–' if est.scale in ('none', 'nonzero') else f'{est.eps:g}'} | {_cell(_yaml_comment('estimator', name))} |")
    return "\n".join(lines)


TABLES = {"estimators-table": estimators_table, "problems-table": problems_table,
          "applicability-table": applicability_table, "group-presets-table": group_presets_table}
