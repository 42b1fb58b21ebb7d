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
import sys
from pathlib import Path

import torch

from .harness import measure_estimates
from .presets import applicable_pairs, build

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "tests" / "reference_variances.json"
N_REPLICATES = 20_000
N_SAMPLES = 2
SEED = 0


def cases() -> list[tuple[str, str]]:
    return applicable_pairs()


def case_id(case) -> str:
    return f"{case[0]}-{case[1]}-n{N_SAMPLES}"


def measure_case(case) -> dict[str, dict[str, float]]:
    ename, pname = case
    estimator = build("estimator", ename)
    m = measure_estimates(build("problem", pname), estimator, n_samples=max(N_SAMPLES, estimator.min_samples),
                          n_replicates=N_REPLICATES, seed=SEED, dtype=torch.float64)
    return {r["param"]: {"variance": r["variance"], "variance_se": r["variance_se"]} for r in m.rows
            if r["row_kind"] != "component"}  # a component row has no variance


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE_FILE}")
    args = parser.parse_args(argv)
    table = {case_id(c): measure_case(c) for c in cases()}
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
