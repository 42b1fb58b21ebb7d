"""Speed benchmark: ``python -m bench.perf [--quick] [--out results/perf/perf.csv]``.

Measures, side by side in one run, the rate (gradient estimates per second) of

* ``naive``: a Python loop of ``backward()`` calls, one estimate per iteration, through
  ``torch.distributions`` (the textbook REINFORCE step);
* ``harness``: :func:`bench.harness.measure` (batched replicates, chunked, statistics included);
* ``closed_form``: the same estimator written with plain tensor ops and no autograd, with the same
  chunking and reductions (the limit on this machine; Gaussian quadratic only);

and the peak resident memory of a harness run with ``n_replicates=1e6, n_samples=100`` in a fresh
process. It prints the ratios and writes one row per measurement to a CSV.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from estimators import make_estimator

from .harness import DEFAULT_CHUNK_ELEMENTS, measure
from .problems import make_problem


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def naive_rate(problem, estimator_name: str, n_samples: int, iterations: int) -> float:
    """Estimates per second of a loop of backward() calls, one estimate per iteration."""
    theta = {k: v.requires_grad_(True) for k, v in problem.init_params("cpu", torch.float32).items()}

    def loop(count):
        for _ in range(count):
            for v in theta.values():
                v.grad = None
            dist = problem.distribution({k: v.unsqueeze(0) for k, v in problem.encode(theta).items()})
            if estimator_name == "reparameterization":
                loss = problem.cost(dist.rsample((n_samples,))).mean()
            else:
                x = dist.sample((n_samples,))
                loss = (problem.cost(x) * dist.log_prob(x)).mean()
            loss.backward()

    loop(max(1, iterations // 10))  # warm-up
    return iterations / _best_of(lambda: loop(iterations), 2)


def closed_form_rate(problem, estimator_name: str, n_samples: int, n_replicates: int) -> float:
    """The Gaussian-quadratic estimator in plain tensor ops (no autograd, no distributions):
    noise, estimates and the same reductions as the harness (sums and sums of squares)."""
    mu, sigma, k, d = problem.mu, problem.sigma, problem.k, problem.dim
    chunk = max(1, DEFAULT_CHUNK_ELEMENTS // (n_samples * d))
    gen = torch.Generator().manual_seed(0)

    def run():
        s1 = torch.zeros(2 * d, dtype=torch.float64)
        s2 = torch.zeros(2 * d, dtype=torch.float64)
        for lo in range(0, n_replicates, chunk):
            c = min(chunk, n_replicates - lo)
            eps = torch.randn((n_samples, c, d), generator=gen)
            x = mu + sigma * eps
            if estimator_name == "reparameterization":
                df = 2 * (x - k)
                g = torch.cat([df.mean(0), (df * eps).mean(0)], 1)
            else:
                f = ((x - k) ** 2).sum(-1, keepdim=True)
                g = torch.cat([(f * eps).mean(0) / sigma, (f * (eps * eps - 1)).mean(0) / sigma], 1)
            g = g.double()
            s1 += g.sum(0)
            s2 += (g * g).sum(0)
        return s1, s2

    run()
    return n_replicates / _best_of(run, 3)


def harness_rate(problem, estimator_name: str, n_samples: int, n_replicates: int, repeats: int) -> float:
    est = make_estimator(estimator_name)
    measure(problem, est, n_samples=n_samples, n_replicates=min(n_replicates, 10_000))  # warm-up
    return n_replicates / _best_of(lambda: measure(problem, est, n_samples=n_samples, n_replicates=n_replicates), repeats)


def peak_memory_mb(n_replicates: int, n_samples: int) -> dict:
    """Peak RSS of a fresh process that imports torch and runs the harness (and of one that only
    imports, for reference)."""
    code = (
        "import resource, json, time, torch\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "from bench.harness import measure\nfrom bench.problems import make_problem\n"
        "from estimators import make_estimator\n"
        "t = time.perf_counter()\n"
        f"m = measure(make_problem('gaussian_quadratic'), make_estimator('score_function'), n_samples={n_samples}, "
        f"n_replicates={n_replicates})\n"
        "print(json.dumps(dict(import_mb=base / 1024, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " seconds=time.perf_counter() - t, variance=m.rows[-1]['variance'])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> pd.DataFrame:
    rows = []
    R = 100_000 if quick else 1_000_000
    loop_iters = 300 if quick else 2000
    cases = [("gaussian_quadratic", {"dim": 1}), ("gaussian_quadratic", {"dim": 100}), ("policy_mlp", {})]
    for pname, popts in cases:
        problem = make_problem(pname, popts)
        for ename in ("score_function", "reparameterization"):
            for n in (1, 10, 100):
                reps = R if popts.get("dim", 1) * n <= 10 else max(10_000, R // (popts.get("dim", 1) * n // 10))
                row = dict(problem=pname, dim=popts.get("dim", ""), estimator=ename, n_samples=n, n_replicates=reps)
                row["naive_per_s"] = naive_rate(problem, ename, n, loop_iters)
                row["harness_per_s"] = harness_rate(problem, ename, n, reps, repeats=2 if quick else 3)
                row["closed_form_per_s"] = (closed_form_rate(problem, ename, n, reps)
                                            if pname == "gaussian_quadratic" else float("nan"))
                row["harness_vs_naive"] = row["harness_per_s"] / row["naive_per_s"]
                row["harness_vs_closed_form"] = row["harness_per_s"] / row["closed_form_per_s"]
                rows.append(row)
                print(f"{pname:>18} dim={row['dim']!s:>3} {ename:>18} n={n:<3} R={reps:<8} naive {row['naive_per_s']:>10.4g}/s  "
                      f"harness {row['harness_per_s']:>10.4g}/s  closed {row['closed_form_per_s']:>10.4g}/s  "
                      f"x{row['harness_vs_naive']:.0f} naive, {row['harness_vs_closed_form']:.2f} of closed form",
                      flush=True)
    df = pd.DataFrame(rows)
    df["torch_version"] = torch.__version__
    df["threads"] = torch.get_num_threads()
    df["machine"] = platform.processor() or platform.machine()
    return df


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 1 minute)")
    parser.add_argument("--out", default="results/perf/perf.csv", help="CSV to write (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1e6 x 100 peak-memory run")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, cpu")
    df = run(args.quick)
    if not args.no_memory:
        mem = peak_memory_mb(1_000_000, 100)
        print(f"n_replicates=1e6, n_samples=100: peak RSS {mem['peak_mb']:.0f} MB "
              f"(torch import alone {mem['import_mb']:.0f} MB), {mem['seconds']:.1f} s")
        df["peak_rss_mb_1e6x100"] = mem["peak_mb"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
