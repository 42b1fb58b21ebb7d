"""Recorded reference variances for the statistical regression tests.

``python -m bench.regression --write`` measures the main estimator x problem pairs at a fixed seed
and writes ``tests/reference_variances.json``; ``tests/test_statistical_regression.py`` checks that
each variance stays within its confidence interval of the recorded value, so a change that
silently raises an estimator's variance (or breaks a baseline) fails the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from estimators import make_estimator

from .harness import measure
from .problems import make_problem

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "tests" / "reference_variances.json"
N_REPLICATES = 50_000
SEED = 0

CASES = [
    # (estimator, options, problem, options, n_samples)
    ("score_function", {}, "gaussian_quadratic", {}, 1),
    ("score_function", {}, "policy_mlp", {}, 10),
    ("score_function_baseline", {"baseline": "ema"}, "gaussian_quadratic", {}, 4),
    ("score_function_baseline", {"baseline": "loo"}, "policy_mlp", {}, 4),
    ("score_function_baseline", {"baseline": "optimal"}, "gaussian_cosine", {}, 4),
    ("reparameterization", {}, "gaussian_exp", {"dim": 3}, 2),
    ("reparameterization", {}, "policy_mlp", {}, 1),
    ("measure_valued", {"coupling": True}, "gaussian_quadratic", {}, 2),
    ("arm", {}, "bernoulli_quadratic", {}, 2),
    ("disarm", {}, "bernoulli_quadratic", {}, 2),
    ("rebar", {}, "bernoulli_toy", {}, 2),
    ("gumbel_softmax", {}, "categorical_bandit", {}, 2),
    ("score_function", {}, "categorical_bandit", {}, 2),
]


def case_id(case) -> str:
    e, eo, p, po, n = case
    opts = ",".join(f"{k}={v}" for k, v in {**eo, **po}.items())
    return f"{e}-{p}-n{n}" + (f"-{opts}" if opts else "")


def measure_case(case) -> dict[str, dict[str, float]]:
    e, eo, p, po, n = case
    m = measure(make_problem(p, po), make_estimator(e, eo), n_samples=n, n_replicates=N_REPLICATES, seed=SEED,
                dtype=torch.float64)
    return {r["param"]: {"variance": r["variance"], "variance_se": r["variance_se"]} for r in m.rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE_FILE}")
    args = parser.parse_args(argv)
    table = {case_id(c): measure_case(c) for c in CASES}
    text = json.dumps({"n_replicates": N_REPLICATES, "seed": SEED, "torch": torch.__version__, "cases": table},
                      indent=1, sort_keys=True)
    if args.write:
        REFERENCE_FILE.write_text(text + "\n")
        print(f"written: {REFERENCE_FILE}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
