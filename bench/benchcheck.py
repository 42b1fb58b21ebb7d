"""Regression benchmarks that a shared machine does not trip: ``python -m bench.benchcheck``.

``save`` runs the pytest-benchmark suite (``tests/benchmarks``) and keeps its timings as this
machine's baseline; ``compare`` runs it again and prints one line per benchmark that regressed
(exit status 1), nothing else. A benchmark regresses when its fastest round (``min``) is more than
50 % slower than the baseline's, and stays so when the suspects alone are run again, twice (the
fastest of the three runs counts): other processes on a shared machine only ever add time, and
they come and go, while a real slowdown stays.

``calibrate`` measures what this costs here: it runs ``compare`` ``--repeats`` times on unchanged
code and once with every benchmarked call made 2x slower (``BENCH_SLOWDOWN=2``, read by
tests/benchmarks), and prints how often unchanged code failed (false alarms) and how many
benchmarks the slowdown flagged, beside single-pass rules (no confirmation) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / "results" / "benchmarks"
DEFAULT_STAT, DEFAULT_THRESHOLD, CONFIRMATIONS = "min", 0.5, 2
CANDIDATES = [(stat, threshold) for stat in ("min", "median", "mean") for threshold in (0.25, 0.5, 0.75)]
PYTEST_OPTIONS = ["--benchmark-only", "--benchmark-min-rounds=5", "--benchmark-max-time=0.2", "-q", "-p",
                  "no:cacheprovider"]


def baseline_path() -> Path:
    return STORE / f"baseline-{platform.node() or 'machine'}.json"


def run_suite(out: Path, slowdown: float = 1.0, select: str | None = None,
              nodes: list[str] | None = None) -> dict[str, dict]:
    """Run tests/benchmarks (or the given test ids), return ``name -> stats`` (seconds)."""
    env = dict(os.environ, BENCH_SLOWDOWN=str(slowdown))
    env.pop("CI", None)
    cmd = [sys.executable, "-m", "pytest", *(nodes or ["tests/benchmarks"]), *PYTEST_OPTIONS,
           f"--benchmark-json={out}"]
    if select:
        cmd += ["-k", select]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"error: the benchmark suite failed: {tail[0]}")
    data = json.loads(out.read_text())
    return {b["fullname"]: b["stats"] for b in data["benchmarks"]}


def regressed(now: dict[str, dict], base: dict[str, dict], stat: str, threshold: float) -> list[str]:
    """The names of the benchmarks whose ``stat`` grew by more than ``threshold``."""
    return [n for n in sorted(now) if n in base and now[n][stat] / base[n][stat] > 1 + threshold]


def check(base: dict[str, dict], folder: Path, stat: str = DEFAULT_STAT, threshold: float = DEFAULT_THRESHOLD,
          confirmations: int = CONFIRMATIONS, slowdown: float = 1.0, select: str | None = None):
    """The suite once, then the suspects alone ``confirmations`` times (each benchmark keeps its
    fastest statistic over the runs): ``(regression lines, the first pass's statistics)``."""
    now = run_suite(folder / "pass0.json", slowdown, select)
    first = dict(now)
    suspects = regressed(now, base, stat, threshold)
    for i in range(confirmations):
        if not suspects:
            break
        again = run_suite(folder / f"pass{i + 1}.json", slowdown, nodes=suspects)
        for name, stats in again.items():
            if stats[stat] < now[name][stat]:
                now[name] = stats
        suspects = regressed({n: now[n] for n in suspects}, base, stat, threshold)
    return regressions({n: now[n] for n in suspects}, base, stat, threshold), first


def regressions(now: dict[str, dict], base: dict[str, dict], stat: str, threshold: float) -> list[str]:
    """One line per benchmark whose ``stat`` grew by more than ``threshold`` (a fraction)."""
    lines = []
    for name, stats in sorted(now.items()):
        if name not in base:
            continue
        ratio = stats[stat] / base[name][stat]
        if ratio > 1 + threshold:
            short = name.split("::", 1)[-1]
            lines.append(f"REGRESSED {short}: {stat} {1e6 * stats[stat]:.4g} us, was {1e6 * base[name][stat]:.4g} us "
                         f"(x{ratio:.2f} > x{1 + threshold:.2f})")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchcheck", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare", "calibrate"])
    parser.add_argument("--stat", default=DEFAULT_STAT, choices=["min", "median", "mean"])
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="allowed growth, e.g. 0.5 = +50%%")
    parser.add_argument("--repeats", type=int, default=10, help="calibrate: runs of unchanged code")
    parser.add_argument("-k", dest="select", default=None, help="only the benchmarks matching this pytest -k")
    args = parser.parse_args(argv)
    STORE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.action == "save":
            run_suite(baseline_path(), select=args.select)
            print(f"baseline written: {baseline_path()}")
            return 0
        if not baseline_path().is_file():
            print(f"error: no baseline for this machine ({baseline_path()}); run python -m bench.benchcheck save first",
                  file=sys.stderr)
            return 2
        base = {k: v for k, v in _load(baseline_path()).items()}
        if args.action == "compare":
            lines, _ = check(base, Path(tmp), args.stat, args.threshold, select=args.select)
            for line in lines:
                print(line)
            print(f"{len(lines)} of {len(base)} benchmarks regressed ({args.stat}, threshold +{args.threshold:.0%}, "
                  f"confirmed by {CONFIRMATIONS} re-runs of the suspects)")
            return 1 if lines else 0
        flagged, firsts = [], []
        for i in range(args.repeats):
            lines, first = check(base, Path(tmp), args.stat, args.threshold, select=args.select)
            flagged.append(len(lines))
            firsts.append(first)
        slow_lines, slow_first = check(base, Path(tmp), args.stat, args.threshold, slowdown=2.0, select=args.select)
        n = len(base)
        print(f"{args.repeats} compares of unchanged code and one with every call made 2x slower, against "
              f"{baseline_path().name} ({n} benchmarks)")
        print("| rule | compares with a false alarm | benchmarks falsely flagged | 2x slowdown flagged |")
        print("|---|---|---|---|")
        print(f"| {args.stat} +{args.threshold:.0%}, confirmed by {CONFIRMATIONS} re-runs (the default) | "
              f"{sum(f > 0 for f in flagged)} of {len(flagged)} | {sum(flagged)} of {len(flagged) * n} | "
              f"{len(slow_lines)} of {n} |")
        for stat, threshold in CANDIDATES:
            single = [len(regressed(r, base, stat, threshold)) for r in firsts]
            print(f"| {stat} +{threshold:.0%}, one pass | {sum(f > 0 for f in single)} of {len(single)} | "
                  f"{sum(single)} of {len(single) * n} | {len(regressed(slow_first, base, stat, threshold))} of {n} |")
        return 0


def _load(path: Path) -> dict[str, dict]:
    return {b["fullname"]: b["stats"] for b in json.loads(path.read_text())["benchmarks"]}


if __name__ == "__main__":
    sys.exit(main())
