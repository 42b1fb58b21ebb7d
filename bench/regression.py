"""Recorded reference variances for the statistical regression tests:
``python -m bench.regression [--write [--all]]``.

Every (estimator preset, problem preset) pair that applies is a case, measured at a fixed seed
(the generic bias test's own measurement, ``tests/estimators/test_generic.py``), whose variances
must stay within 4 standard errors of the difference of the values recorded in
``tests/reference_variances.json``; so a change that silently raises an estimator's variance (or
breaks a baseline) fails. ``--write`` measures only the cases the file lacks (a new estimator or
problem: its own lines, in seconds to minutes) and drops the cases that no longer exist;
``--all`` measures every case again, ``--redo NAME`` those whose name contains NAME. Values are kept to 6 significant digits, so re-recording an
unchanged case rewrites nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from .harness import measure_estimates
from .presets import applicable_pairs, build

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "tests" / "reference_variances.json"
N_REPLICATES = 20_000
N_SAMPLES = 2
SEED = 11  # the generic bias test's measurement (tests/estimators/test_generic.py) is this one
DIGITS = 6


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


def _rounded(x: float) -> float:
    return float(f"{x:.{DIGITS}g}") if math.isfinite(x) else x


def variances(m) -> dict[str, dict[str, float]]:
    return {r["param"]: {"variance": _rounded(r["variance"]), "variance_se": _rounded(r["variance_se"])}
            for r in m.rows if r["row_kind"] != "component"}  # a component row has no variance


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


def load() -> dict:
    return json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.is_file() else {}


def record(everything: bool = False, redo: str | None = None, out=sys.stdout) -> dict:
    """The file's content after measuring the missing cases (every case with ``everything``; also
    those whose name contains ``redo``)."""
    old = load()
    same_settings = old.get("n_replicates") == N_REPLICATES and old.get("seed") == SEED
    recorded = old.get("cases", {}) if same_settings and not everything else {}
    if redo:
        recorded = {k: v for k, v in recorded.items() if redo not in k}
    table = {}
    for case in cases():
        key = case_id(case)
        if key in recorded:
            table[key] = recorded[key]
            continue
        start = time.perf_counter()
        table[key] = variances(measure_case(case))
        print(f"recorded {key} ({time.perf_counter() - start:.1f} s)", file=out, flush=True)
    for key in sorted(set(recorded) - set(table)):
        print(f"dropped {key} (no longer a case)", file=out)
    return {"n_replicates": N_REPLICATES, "seed": SEED, "torch": old.get("torch", torch.__version__)
            if recorded else torch.__version__, "cases": table}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.regression", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record the missing cases in {REFERENCE_FILE}")
    parser.add_argument("--all", action="store_true", help="with --write: measure every case again")
    parser.add_argument("--redo", default=None, help="with --write: measure again the cases whose name contains this "
                        "(after an intended change to one estimator, e.g. --redo relax)")
    args = parser.parse_args(argv)
    if not args.write:
        missing = [case_id(c) for c in cases() if case_id(c) not in load().get("cases", {})]
        print("\n".join(f"not recorded: {k}" for k in missing) or "every case is recorded")
        return 0
    text = json.dumps(record(args.all, args.redo), indent=1, sort_keys=True)
    REFERENCE_FILE.write_text(text + "\n")
    print(f"written: {REFERENCE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
