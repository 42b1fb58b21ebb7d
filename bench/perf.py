"""Speed benchmark: ``python -m bench.perf [--quick] [--out results/perf/perf.csv]``.

Measures, side by side in one run, the rate (gradient estimates per second) of

Each rate is a median over rounds in which the three are timed in turn with
``torch.utils.benchmark.Timer`` (the machine's speed drifts; alternating keeps the ratios fair).

* ``naive``: a Python loop of ``backward()`` calls, one estimate per iteration, through
  ``torch.distributions`` (the textbook REINFORCE step);
* ``harness``: :meth:`bench.harness.Harness.run` (batched replicates, chunked, statistics
  included; the one-time set-up of exact gradient and Jacobian is not timed);
* ``closed_form``: the same estimator written with plain tensor ops and no autograd, with the same
  chunking and reductions (the limit on this machine; Gaussian quadratic only);

and the peak resident memory of a harness run with ``n_replicates=1e6, n_samples=100`` in a fresh
process. It prints the ratios and writes one row per measurement to a CSV.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
from torch.utils.benchmark import Timer

from estimators import make_estimator

from .harness import DEFAULT_CHUNK_ELEMENTS, Harness
from .problems import make_problem


def _median_seconds(fn, min_run_time: float) -> float:
    """Median wall time of one call of ``fn`` (``torch.utils.benchmark.Timer``, after a warm-up)."""
    fn()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def naive_rate(problem, estimator_name: str, n_samples: int, iterations: int, min_run_time: float = 1.0) -> float:
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

    return iterations / _median_seconds(lambda: loop(iterations), min_run_time)


def closed_form_rate(problem, estimator_name: str, n_samples: int, n_replicates: int,
                     min_run_time: float = 1.0) -> float:
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

    return n_replicates / _median_seconds(run, min_run_time)


def harness_rate(problem, estimator_name: str, n_samples: int, n_replicates: int, min_run_time: float = 1.0,
                 compile: bool = False) -> float:
    """Rate of :meth:`bench.harness.Harness.run` (estimates and their statistics); the one-time
    set-up (exact gradient, Jacobian), which does not depend on the number of replicates, is not
    timed, as the closed form has none."""
    harness = Harness(problem, make_estimator(estimator_name), n_samples=n_samples, compile=compile)
    return n_replicates / _median_seconds(lambda: harness.run(n_replicates), min_run_time)


def peak_memory_mb(n_replicates: int, n_samples: int) -> dict:
    """Peak resident memory (``VmHWM``, which unlike ``ru_maxrss`` does not carry the parent's
    peak across fork and exec) of a fresh process that runs the harness, and after importing torch."""
    code = (
        "import json, time, torch\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "base = hwm()\n"
        "from bench.harness import measure\nfrom bench.problems import make_problem\n"
        "from estimators import make_estimator\n"
        "t = time.perf_counter()\n"
        f"m = measure(make_problem('gaussian_quadratic'), make_estimator('score_function'), n_samples={n_samples}, "
        f"n_replicates={n_replicates})\n"
        "print(json.dumps(dict(import_mb=base, peak_mb=hwm(), seconds=time.perf_counter() - t,"
        " variance=m.rows[-1]['variance'])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_case(problem, pname, popts, ename, n, reps, loop_iters, quick, rounds: int = 5,
                  compile: bool = False) -> dict:
    """The three rates, measured in alternation over ``rounds`` short rounds (the machine's speed
    drifts over seconds; alternating keeps the ratios side by side); medians over the rounds."""
    t = (0.3 if quick else 1.0) / rounds
    closed = pname == "gaussian_quadratic"
    naive, harness, compiled, closed_form = [], [], [], []
    for _ in range(rounds):
        naive.append(naive_rate(problem, ename, n, loop_iters, t))
        harness.append(harness_rate(problem, ename, n, reps, t))
        if compile:
            compiled.append(harness_rate(problem, ename, n, reps, t, compile=True))
        closed_form.append(closed_form_rate(problem, ename, n, reps, t) if closed else float("nan"))
    med = lambda xs: float(pd.Series(xs).median()) if xs else float("nan")  # noqa: E731
    row = dict(problem=pname, dim=popts.get("dim", ""), estimator=ename, n_samples=n, n_replicates=reps,
               naive_per_s=med(naive), harness_per_s=med(harness), closed_form_per_s=med(closed_form))
    row["harness_vs_naive"] = row["harness_per_s"] / row["naive_per_s"]
    row["harness_vs_closed_form"] = row["harness_per_s"] / row["closed_form_per_s"]
    if compile:
        row["compiled_per_s"] = med(compiled)
        row["compiled_vs_closed_form"] = row["compiled_per_s"] / row["closed_form_per_s"]
    print(f"{pname:>18} dim={row['dim']!s:>3} {ename:>18} n={n:<3} R={reps:<8} naive {row['naive_per_s']:>10.4g}/s  "
          f"harness {row['harness_per_s']:>10.4g}/s  closed {row['closed_form_per_s']:>10.4g}/s  "
          f"x{row['harness_vs_naive']:.0f} naive, {row['harness_vs_closed_form']:.2f} of closed form"
          + (f"; compiled {row['compiled_per_s']:.4g}/s, {row['compiled_vs_closed_form']:.2f} of closed form"
             if compile else ""), flush=True)
    return row


def question_loop_rate(n_samples: int, steps: int, min_run_time: float = 1.0) -> float:
    """Run-steps per second of the REINFORCE question's own training loop: one policy network, one
    ``backward()`` and one Adam step per step, an EMA baseline (one run at a time)."""
    from .problems.policy import PolicyNet

    torch.manual_seed(0)
    net = PolicyNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.ones(1), 3.0
    baseline = 0.0

    def loop():
        nonlocal baseline
        for _ in range(steps):
            mu, std = net(x)
            dist = torch.distributions.Normal(mu, std)
            a = dist.sample((n_samples,))
            reward = -((y - a) ** 2)
            loss = -((reward - baseline) * dist.log_prob(a)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            baseline = 0.9 * baseline + 0.1 * float(reward.mean())

    return steps / _median_seconds(loop, min_run_time)


def trainer_rate(n_seeds: int, n_samples: int, steps: int) -> float:
    """Run-steps per second of :func:`bench.training.train` with ``n_seeds`` batched runs (the
    same policy network, EMA baseline and Adam; logging once at the end, not timed)."""
    from .training import train

    problem = make_problem("policy_mlp")
    estimator = make_estimator("score_function_baseline", {"baseline": "ema", "decay": 0.9})
    train(problem, estimator, {"name": "adam", "lr": 0.01}, n_samples=n_samples, steps=5, n_seeds=n_seeds,
          log_every=5)  # warm-up
    done = train(problem, estimator, {"name": "adam", "lr": 0.01}, n_samples=n_samples, steps=steps,
                 n_seeds=n_seeds, log_every=steps)
    return steps * n_seeds / done.seconds


def trainer_table(quick: bool, rounds: int = 3) -> pd.DataFrame:
    """The batched trainer against the question's loop, in alternation; medians over rounds."""
    rows = []
    for n_seeds in (10, 100, 1000):
        loop, batched = [], []
        for _ in range(rounds):
            loop.append(question_loop_rate(10, 50 if quick else 200, 0.3 if quick else 1.0))
            batched.append(trainer_rate(n_seeds, 10, 50 if quick else 200))
        row = dict(n_seeds=n_seeds, question_loop_per_s=float(pd.Series(loop).median()),
                   trainer_per_s=float(pd.Series(batched).median()))
        row["trainer_vs_loop"] = row["trainer_per_s"] / row["question_loop_per_s"]
        print(f"trainer policy_mlp n_seeds={n_seeds:<5} question's loop {row['question_loop_per_s']:.4g} run-steps/s, "
              f"batched trainer {row['trainer_per_s']:.4g} run-steps/s: x{row['trainer_vs_loop']:.0f}", flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def trainer_markdown(df: pd.DataFrame) -> str:
    lines = ["| problem | n_seeds | the question's loop (run-steps/s) | batched trainer (run-steps/s) | ratio |",
             "|---|---|---|---|---|"]
    lines += [f"| policy_mlp, score_function_baseline (EMA), Adam, n_samples=10 | {r.n_seeds} | "
              f"{r.question_loop_per_s:.3g} | {r.trainer_per_s:.3g} | {r.trainer_vs_loop:,.0f}x |"
              for r in df.itertuples()]
    return "\n".join(lines)


def markdown_table(df: pd.DataFrame) -> str:
    """The README's speed table."""
    compiled = "compiled_per_s" in df
    head = ("| problem | estimator | n_samples | n_replicates | naive loop /s | harness /s | closed form /s "
            "| harness ÷ naive | harness ÷ closed form |")
    lines = [head + (" compiled ÷ closed form |" if compiled else ""), "|---" * (10 if compiled else 9) + "|"]
    ratio = lambda v: "" if pd.isna(v) else f"{v:.2f}"  # noqa: E731
    for r in df.itertuples():
        prob = f"{r.problem} (dim {r.dim})" if r.dim != "" and not pd.isna(r.dim) else r.problem
        closed = "" if pd.isna(r.closed_form_per_s) else f"{r.closed_form_per_s:.3g}"
        lines.append(f"| {prob} | {r.estimator} | {r.n_samples} | {r.n_replicates:.0e} | {r.naive_per_s:.3g} | "
                     f"{r.harness_per_s:.3g} | {closed} | {r.harness_vs_naive:,.0f}x | {ratio(r.harness_vs_closed_form)} |"
                     + (f" {ratio(r.compiled_vs_closed_form)} |" if compiled else ""))
    return "\n".join(lines)


def run(quick: bool, compile: bool = False) -> pd.DataFrame:
    rows = []
    R = 100_000 if quick else 1_000_000
    loop_iters = 100 if quick else 500
    cases = [("gaussian_quadratic", {"dim": 1}), ("gaussian_quadratic", {"dim": 100}), ("policy_mlp", {})]
    for pname, popts in cases:
        problem = make_problem(pname, popts)
        for ename in ("score_function", "reparameterization"):
            for n in (1, 10, 100):
                size = popts.get("dim", 1) * n
                reps_list = [R if size <= 10 else max(10_000, R // (size // 10))]
                if size == 1 and not quick:
                    reps_list.insert(0, 100_000)  # the goal is stated at 1e5 "and more"
                for reps in reps_list:
                    rows.append(_measure_case(problem, pname, popts, ename, n, reps, loop_iters, quick,
                                              compile=compile))
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
    parser.add_argument("--compile", action="store_true", help="also time the opt-in torch.compile harness")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, cpu")
    trainer = trainer_table(args.quick)
    df = run(args.quick, args.compile)
    if not args.no_memory:
        mem = peak_memory_mb(1_000_000, 100)
        print(f"n_replicates=1e6, n_samples=100: peak resident memory {mem['peak_mb']:.0f} MB "
              f"(after importing torch {mem['import_mb']:.0f} MB), {mem['seconds']:.1f} s")
        df["peak_rss_mb_1e6x100"] = mem["peak_mb"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    trainer.to_csv(out.with_name("trainer.csv"), index=False)
    print(markdown_table(df))
    print()
    print(trainer_markdown(trainer))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
