"""The estimators x problems table (applies or not, evaluations of f per sample), generated from
the registries: ``python -m bench.applicability`` prints the table the README shows."""

from __future__ import annotations

import torch

from estimators import ESTIMATORS, capabilities, make_estimator

from .harness import problem_cost, replicate
from .problems import PROBLEMS, make_problem


def applicability() -> dict[tuple[str, str], str | None]:
    """``(estimator, problem) -> None`` if it applies (defaults of both), else the reason."""
    out = {}
    for pname in sorted(PROBLEMS):
        problem = make_problem(pname)
        theta = problem.init_params("cpu", torch.float32)
        with torch.no_grad():
            dist = problem.distribution(replicate(problem.encode(theta), 1))
        caps = capabilities(dist, problem_cost(problem))
        for ename in sorted(ESTIMATORS):
            out[ename, pname] = make_estimator(ename).applies_to(caps)
    return out


def markdown_table() -> str:
    table = applicability()
    problems = sorted(PROBLEMS)
    lines = ["| estimator | " + " | ".join(f"`{p}`" for p in problems) + " |",
             "|---|" + "---|" * len(problems)]
    for ename in sorted(ESTIMATORS):
        est = make_estimator(ename)
        cells = []
        for pname in problems:
            if table[ename, pname] is not None:
                cells.append("–")
                continue
            problem = make_problem(pname)
            with torch.no_grad():
                dist = problem.distribution(replicate(problem.encode(problem.init_params("cpu", torch.float32)), 1))
            cells.append(f"✓ {est.evals_per_estimate(1, dist)}")
        lines.append(f"| `{ename}`{' (biased)' if est.biased else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
