"""Recorded reference variances for the statistical regression tests.

``python -m bench.regression --write`` measures every (estimator preset, problem preset) pair that
applies, at a fixed seed, and writes ``tests/reference_variances.json``;
``tests/test_statistical_regression.py`` checks that each variance stays within its confidence
interval of the recorded value, so a change that silently raises an estimator's variance (or
breaks a baseline) fails. The cases come from the presets: a new estimator or problem is a new
case (recorded by the next ``--write``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from .harness import measure_estimates
from .presets import applicable_pairs, build

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "tests" / "reference_variances.json"
N_REPLICATES = 20_000
N_SAMPLES = 2
SEED = 11  # the generic bias test's measurement (tests/estimators/test_generic.py) is this one


def cases() -> list[tuple[str, str]]:
    return applicable_pairs()


def case_id(case) -> str:
    return f"{case[0]}-{case[1]}-n{N_SAMPLES}"


def measure_case(case):
    """The case's measurement (its rows), as the generic bias test makes it."""
    ename, pname = case
    estimator = build("estimator", ename)
    return measure_estimates(build("problem", pname), estimator, n_samples=max(N_SAMPLES, estimator.min_samples),
                             n_replicates=N_REPLICATES, seed=SEED, dtype=torch.float64)


def variances(m) -> dict[str, dict[str, float]]:
    return {r["param"]: {"variance": r["variance"], "variance_se": r["variance_se"]} for r in m.rows
            if r["row_kind"] != "component"}  # a component row has no variance


def check_against_reference(case, m, reference: dict, z: float = 4.0) -> str | None:
    """``None`` when every variance is within ``z`` standard errors of the difference of the
    recorded one, else what differs."""
    recorded = reference[case_id(case)]
    now = variances(m)
    if set(now) != set(recorded):
        return f"rows {sorted(now)} != recorded {sorted(recorded)}"
    for param, ref in recorded.items():
        got = now[param]
        tol = z * math.hypot(got["variance_se"], ref["variance_se"])
        if not abs(got["variance"] - ref["variance"]) <= tol:
            return f"{param}: variance {got['variance']:.6g} vs recorded {ref['variance']:.6g} (tolerance {tol:.3g})"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE_FILE}")
    args = parser.parse_args(argv)
    table = {case_id(c): variances(measure_case(c)) for c in cases()}
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
