"""The estimators x problems table (applies or not, evaluations of f per sample), generated from
the registries: ``python -m bench.applicability`` prints the table the README shows."""

from __future__ import annotations

import torch

from estimators import ESTIMATORS, capabilities, make_estimator

from .harness import problem_cost, replicate
from .problems import PROBLEMS, make_problem


def _default_distributions() -> dict[str, tuple]:
    """Per problem (defaults): one replicate's distribution and its capabilities."""
    out = {}
    for pname in sorted(PROBLEMS):
        problem = make_problem(pname)
        with torch.no_grad():
            dist = problem.distribution(replicate(problem.encode(problem.init_params("cpu", torch.float32)), 1))
        out[pname] = (dist, capabilities(dist, problem_cost(problem)))
    return out


def applicability(distributions: dict[str, tuple] | None = None) -> dict[tuple[str, str], str | None]:
    """``(estimator, problem) -> None`` if it applies (defaults of both), else the reason."""
    distributions = distributions or _default_distributions()
    return {(ename, pname): make_estimator(ename).applies_to(caps)
            for pname, (_, caps) in distributions.items() for ename in sorted(ESTIMATORS)}


def markdown_table() -> str:
    distributions = _default_distributions()
    table = applicability(distributions)
    problems = sorted(PROBLEMS)
    lines = ["| estimator | " + " | ".join(f"`{p}`" for p in problems) + " |",
             "|---|" + "---|" * len(problems)]
    for ename in sorted(ESTIMATORS):
        est = make_estimator(ename)
        cells = ["–" if table[ename, pname] is not None else f"✓ {est.evals_per_estimate(1, distributions[pname][0])}"
                 for pname in problems]
        lines.append(f"| `{ename}`{' (biased)' if est.biased else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
