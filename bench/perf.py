"""Speed benchmark: ``python -m bench.perf [--quick] [--compile] [--peers] [--device cuda]``.

Measures, side by side, the rate (gradient estimates per second) of

* ``naive``: a Python loop of ``backward()`` calls, one estimate per iteration, through
  ``torch.distributions`` (the textbook REINFORCE step);
* ``harness``: :meth:`bench.harness.Harness.run` (batched replicates, chunked, statistics included;
  the one-time set-up of exact gradient and Jacobian is not timed), eager;
* ``compiled`` (``--compile``): the same with ``compile=true`` (the whole chunk step compiled; its
  compilation is done before timing and reported);
* ``closed_form``: the same estimator written with plain tensor ops and no autograd, with the same
  chunking and reductions (the limit on this machine; Gaussian quadratic only);
* ``peer`` (``--peers``, with the optional extra ``.[peers]``: jax and optax==0.2.6):
  ``optax.monte_carlo``'s score-function and pathwise jacobians under ``jax.jit``, on the same
  problem, sizes and chunks, with the same reductions (sums and sums of squares); jit compile time
  excluded and reported;

each a median over rounds in which the methods are timed in turn with
``torch.utils.benchmark.Timer`` (the machine's speed drifts; alternating keeps the ratios fair),
with the spread over rounds. Also: the batched trainer against the REINFORCE question's own loop
(run-steps per second), and the peak resident memory of a large harness run. Writes
``results/perf/perf.csv`` and ``trainer.csv`` and prints the README's tables. With ``--device cuda``
the sizes are a GPU's (:func:`gpu_cases`), the files ``perf_cuda.csv`` (``--out``) and
``trainer_cuda.csv``; ``--chunk-sweep`` adds the rates against ``chunk_elements`` (``chunks*.csv``)
and, on a GPU, the peak memory of heavy pairs at the default chunk. ``.ci/gpu-check`` runs it all
on a CUDA machine, with the CUDA tests and benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.benchmark import Timer

from estimators import Sampler, make_estimator

from .harness import DEFAULT_CHUNK_ELEMENTS, Harness, default_chunk_elements
from .problems import make_problem

PEERS_HINT = "the peer needs the optional extra: pip install -e '.[peers]' (jax, optax==0.2.6)"


def _median_seconds(fn, min_run_time: float, device: str = "cpu") -> float:
    """Median wall time of one call of ``fn`` (``torch.utils.benchmark.Timer``: a warm-up, then
    blocks of calls; CUDA synchronised)."""
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def naive_rate(problem, estimator_name: str, n_samples: int, iterations: int, min_run_time: float = 1.0,
               device: str = "cpu") -> float:
    """Estimates per second of a loop of backward() calls, one estimate per iteration."""
    theta = {k: v.requires_grad_(True) for k, v in problem.init_params(device, torch.float32).items()}

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

    return iterations / _median_seconds(lambda: loop(iterations), min_run_time, device)


def closed_form_rate(problem, estimator_name: str, n_samples: int, n_replicates: int,
                     min_run_time: float = 1.0, device: str = "cpu",
                     chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> float:
    """The Gaussian-quadratic estimator in plain tensor ops (no autograd, no distributions):
    noise (from the harness's two-generator stream), estimates and the same reductions as the
    harness (sums and sums of squares)."""
    mu, sigma, k, d = problem.mu, problem.sigma, problem.k, problem.dim
    chunk = max(1, chunk_elements // (n_samples * d))
    sampler = Sampler.seeded(0, device)  # the harness's stream, so both pay the same for the noise
    like = torch.zeros((), device=device)

    def run():
        s1 = torch.zeros(2 * d, dtype=torch.float64, device=device)
        s2 = torch.zeros(2 * d, dtype=torch.float64, device=device)
        for lo in range(0, n_replicates, chunk):
            c = min(chunk, n_replicates - lo)
            eps = sampler.normal((n_samples, c, d), like)
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

    return n_replicates / _median_seconds(run, min_run_time, device)


def harness_rate(harness: Harness, n_replicates: int, min_run_time: float = 1.0) -> float:
    """Rate of :meth:`bench.harness.Harness.run` (estimates and their statistics); the one-time
    set-up (exact gradient, Jacobian), which does not depend on the number of replicates, is not
    timed, as the closed form has none."""
    return n_replicates / _median_seconds(lambda: harness.run(n_replicates), min_run_time, str(harness.device))


class Peer:
    """``optax.monte_carlo`` under ``jax.jit`` on the Gaussian quadratic: its per-sample
    jacobians, averaged over ``n_samples`` per estimate, summed and squared per chunk (the same
    reductions as the harness); chunks as the harness's, one jit compilation per chunk shape."""

    def __init__(self, problem, estimator_name: str, n_samples: int, n_replicates: int,
                 chunk_elements: int = DEFAULT_CHUNK_ELEMENTS):
        import jax
        import jax.numpy as jnp
        from optax import monte_carlo
        from optax._src.utils import multi_normal  # the distribution builder optax.monte_carlo documents

        self.jax, self.R, self.n = jax, n_replicates, n_samples
        k, d = problem.k, problem.dim
        params = [jnp.full((d,), problem.mu, jnp.float32), jnp.full((d,), math.log(problem.sigma), jnp.float32)]
        jacobians = (monte_carlo.pathwise_jacobians if estimator_name == "reparameterization"
                     else monte_carlo.score_function_jacobians)

        def cost(x):
            return jnp.sum((x - k) ** 2)

        def chunk_sums(key, c):
            jac = jacobians(cost, params, multi_normal, key, c * n_samples)
            g = jnp.concatenate([j.reshape(c, n_samples, -1).mean(1) for j in jac], -1)
            return g.sum(0), (g * g).sum(0)

        self.step = jax.jit(chunk_sums, static_argnums=1)
        self.chunk = max(1, chunk_elements // (n_samples * d))
        start = time.perf_counter()
        self.run()  # compiles every chunk shape
        self.compile_s = time.perf_counter() - start - self._steady()

    def _steady(self) -> float:
        start = time.perf_counter()
        self.run()
        return time.perf_counter() - start

    def run(self):  # on jax's default device: the GPU where jax has one
        key = self.jax.random.PRNGKey(0)
        out = []
        for lo in range(0, self.R, self.chunk):
            key, sub = self.jax.random.split(key)
            out.append(self.step(sub, min(self.chunk, self.R - lo)))
        return self.jax.block_until_ready(out)


def peers_available() -> bool:
    try:
        import jax  # noqa: F401
        from optax import monte_carlo  # noqa: F401
    except ImportError:
        return False
    return True


def measure_case(pname: str, popts: dict, ename: str, n: int, reps: int, *, quick: bool, rounds: int = 5,
                 compile: bool = False, peers: bool = False, device: str = "cpu", naive: bool = True,
                 chunk_elements: int | None = None) -> dict:
    """The rates of every method, measured in alternation over ``rounds`` short rounds; medians
    and, per method, the spread over the rounds ((max - min) / median). A method that fails to
    set up (a compiler or the peer on an untried machine) is left out of the row, which says why
    in ``<method>_error``; the others are still measured."""
    chunk_elements = default_chunk_elements(device) if chunk_elements is None else chunk_elements
    problem = make_problem(pname, popts)
    t = (0.3 if quick else 1.0) / rounds
    closed = pname == "gaussian_quadratic"
    methods, extra = {}, {}
    harness = Harness(problem, make_estimator(ename), n_samples=n, device=device, chunk_elements=chunk_elements)
    harness.run(min(reps, 1000))  # warm-up
    methods["harness"] = lambda: harness_rate(harness, reps, t)
    if naive:
        methods["naive"] = lambda: naive_rate(problem, ename, n, 100 if quick else 300, t, device)
    if compile:
        try:
            start = time.perf_counter()
            compiled = Harness(problem, make_estimator(ename), n_samples=n, device=device, compile=True,
                               chunk_elements=chunk_elements)
            compiled.run(reps)  # compiles each chunk shape
            extra["compile_s"] = time.perf_counter() - start
            methods["compiled"] = lambda: harness_rate(compiled, reps, t)
        except Exception as err:  # noqa: BLE001 - recorded in the row, the other methods go on
            extra["compiled_error"] = f"{type(err).__name__}: {err}".splitlines()[0]
    if closed:
        methods["closed_form"] = lambda: closed_form_rate(problem, ename, n, reps, t, device, chunk_elements)
    if peers and closed and popts.get("dim", 1) == 1:
        try:
            peer = Peer(problem, ename, n, reps, chunk_elements)
            extra["peer_compile_s"] = peer.compile_s
            extra["peer_device"] = str(peer.jax.devices()[0].platform)
            methods["peer"] = lambda: reps / _median_seconds(peer.run, t)
        except Exception as err:  # noqa: BLE001
            extra["peer_error"] = f"{type(err).__name__}: {err}".splitlines()[0]
    rates = {m: [] for m in methods}
    for _ in range(rounds):
        for m, fn in methods.items():
            rates[m].append(fn())
    row = dict(problem=pname, dim=popts.get("dim", ""), estimator=ename, n_samples=n, n_replicates=reps, device=device,
               chunk_elements=chunk_elements)
    for m, values in rates.items():
        s = pd.Series(values)
        row[f"{m}_per_s"] = float(s.median())
        row[f"{m}_spread"] = float((s.max() - s.min()) / s.median())
    for a, b in (("harness", "naive"), ("harness", "closed_form"), ("compiled", "closed_form"), ("harness", "peer"),
                 ("compiled", "peer")):
        if f"{a}_per_s" in row and f"{b}_per_s" in row:
            row[f"{a}_vs_{b}"] = row[f"{a}_per_s"] / row[f"{b}_per_s"]
    row.update(extra)
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def cases(quick: bool, device: str = "cpu") -> list[tuple]:
    """``(problem, options, estimator, n_samples, n_replicates)`` of the speed table (on a GPU, the
    sizes at which it is busy, and fewer rows: each compiles in its own time)."""
    if device.startswith("cuda"):
        return gpu_cases(quick)
    big = [100_000] if quick else [100_000, 1_000_000]
    out = []
    for ename in ("score_function", "reparameterization"):
        for n in (1, 10, 100):
            for R in big:
                if n == 100 and R == 1_000_000 and quick:
                    continue
                out.append(("gaussian_quadratic", {"dim": 1}, ename, n, R))
        out.append(("gaussian_quadratic", {"dim": 100}, ename, 1, 100_000))
        out.append(("gaussian_quadratic", {"dim": 100}, ename, 10, 10_000))
        out.append(("policy_mlp", {}, ename, 1, 100_000))
        out.append(("policy_mlp", {}, ename, 10, 100_000))
    return out


def gpu_cases(quick: bool) -> list[tuple]:
    big = 1_000_000 if quick else 10_000_000
    out = []
    for ename in ("score_function", "reparameterization"):
        out += [("gaussian_quadratic", {"dim": 1}, ename, 1, 100_000), ("gaussian_quadratic", {"dim": 1}, ename, 1, big),
                ("gaussian_quadratic", {"dim": 1}, ename, 10, big // 10), ("policy_mlp", {}, ename, 10, big // 10)]
    out.append(("gaussian_quadratic", {"dim": 100}, "score_function", 1, big // 10))
    return out


def chunk_sweep(device: str, peers: bool, exponents=None, n_replicates: int = 10_000_000) -> pd.DataFrame:
    """Every method's rate against ``chunk_elements`` (2^16 ... 2^23 on a CPU, 2^19 ... 2^23 on a GPU;
    score function, ``n_samples=1``, shorter rounds): on a GPU the chunk's fixed cost decides the rate."""
    if exponents is None:
        exponents = range(19, 24) if device.startswith("cuda") else range(16, 24)
    return pd.DataFrame([measure_case("gaussian_quadratic", {"dim": 1}, "score_function", 1, n_replicates, quick=True,
                                      compile=True, peers=peers, device=device, naive=False, chunk_elements=2**k)
                         for k in exponents])


# Pairs with the most memory per chunk among those measured (the group estimators on the sequence policy first).
HEAVY_PAIRS = (("grpo", "sequence_policy", 10), ("exact", "sequence_policy", 10), ("score_function", "policy_mlp", 10),
               ("dr_grpo", "bayes_logreg", 10), ("reinmax", "categorical_bandit", 10),
               ("score_function", "gaussian_quadratic", 1))


def peak_gpu_memory(device: str) -> pd.DataFrame:
    """Peak GPU memory (``torch.cuda.max_memory_allocated``) of a three-chunk run of each of
    :data:`HEAVY_PAIRS` at the device's default chunk."""
    from .presets import build

    rows = []
    for e, p, n in HEAVY_PAIRS:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        h = Harness(build("problem", p), build("estimator", e), n_samples=n, device=device)
        h.run(2 * h.chunk + 1)
        rows.append({"estimator": e, "problem": p, "n_samples": n, "chunk": h.chunk,
                     "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30})
    return pd.DataFrame(rows)


def question_loop_rate(n_samples: int, steps: int, min_run_time: float = 1.0, device: str = "cpu") -> float:
    """Run-steps per second of the REINFORCE question's own training loop: one policy network, one
    ``backward()`` and one Adam step per step, an EMA baseline (one run at a time)."""
    from .problems.policy import PolicyNet

    torch.manual_seed(0)
    net = PolicyNet().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.ones(1, device=device), 3.0
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

    return steps / _median_seconds(loop, min_run_time, device)


def trainer_rate(n_seeds: int, n_samples: int, steps: int, device: str = "cpu") -> float:
    """Run-steps per second of :func:`bench.training.train` with ``n_seeds`` batched runs (the
    same policy network, EMA baseline and Adam; logging once at the end, not timed)."""
    from .training import train

    problem = make_problem("policy_mlp")
    estimator = make_estimator("score_function_baseline", {"baseline": "ema", "decay": 0.9})
    train(problem, estimator, {"name": "adam", "lr": 0.01}, n_samples=n_samples, steps=5, n_seeds=n_seeds,
          log_every=5, device=device)  # warm-up
    done = train(problem, estimator, {"name": "adam", "lr": 0.01}, n_samples=n_samples, steps=steps,
                 n_seeds=n_seeds, log_every=steps, device=device)
    return steps * n_seeds / done.seconds


def trainer_table(quick: bool, rounds: int = 3, device: str = "cpu") -> pd.DataFrame:
    """The batched trainer against the question's loop (both on ``device``), in alternation;
    medians over rounds."""
    rows = []
    for n_seeds in (10, 100, 1000):
        loop, batched = [], []
        for _ in range(rounds):
            loop.append(question_loop_rate(10, 50 if quick else 200, 0.3 if quick else 1.0, device))
            batched.append(trainer_rate(n_seeds, 10, 50 if quick else 200, device))
        row = dict(device=device, n_seeds=n_seeds, question_loop_per_s=float(pd.Series(loop).median()),
                   trainer_per_s=float(pd.Series(batched).median()))
        row["trainer_vs_loop"] = row["trainer_per_s"] / row["question_loop_per_s"]
        print(f"trainer policy_mlp n_seeds={n_seeds:<5} question's loop {row['question_loop_per_s']:.4g} run-steps/s, "
              f"batched trainer {row['trainer_per_s']:.4g} run-steps/s: x{row['trainer_vs_loop']:.0f}", flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def trainer_markdown(df: pd.DataFrame) -> str:
    lines = ["| training loop (policy_mlp, EMA baseline, Adam, n_samples=10) | n_seeds | the question's loop "
             "(run-steps/s) | batched trainer (run-steps/s) | ratio |", "|---|---|---|---|---|"]
    lines += [f"| `python -m bench.train` | {r.n_seeds} | {r.question_loop_per_s:.3g} | {r.trainer_per_s:.3g} | "
              f"{r.trainer_vs_loop:,.0f}x |" for r in df.itertuples()]
    return "\n".join(lines)


def _fmt(v, pattern="{:.3g}") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else pattern.format(v)


def markdown_table(df: pd.DataFrame) -> str:
    """The README's speed table."""
    cols = [("naive loop /s", "naive_per_s", "{:.3g}"), ("harness /s", "harness_per_s", "{:.3g}"),
            ("compiled /s", "compiled_per_s", "{:.3g}"), ("closed form /s", "closed_form_per_s", "{:.3g}"),
            ("optax + jax.jit /s", "peer_per_s", "{:.3g}"), ("harness ÷ naive", "harness_vs_naive", "{:,.0f}x"),
            ("harness ÷ closed", "harness_vs_closed_form", "{:.2f}"),
            ("compiled ÷ closed", "compiled_vs_closed_form", "{:.2f}"), ("harness ÷ peer", "harness_vs_peer", "{:.2f}"),
            ("compiled ÷ peer", "compiled_vs_peer", "{:.2f}"), ("spread (harness)", "harness_spread", "{:.0%}"),
            ("compile (s)", "compile_s", "{:.1f}"), ("peer's jit (s)", "peer_compile_s", "{:.2f}")]
    cols = [c for c in cols if c[1] in df and df[c[1]].notna().any()]
    lines = ["| problem | estimator | n | R | " + " | ".join(c[0] for c in cols) + " |",
             "|---" * (4 + len(cols)) + "|"]
    for r in df.to_dict("records"):
        dim = r["dim"]
        dim = int(dim) if isinstance(dim, float) and dim.is_integer() else dim  # read back from a CSV as 1.0
        prob = f"{r['problem']} (dim {dim})" if dim != "" and not pd.isna(dim) else r["problem"]
        lines.append(f"| {prob} | {r['estimator']} | {r['n_samples']} | {r['n_replicates']:.0e} | "
                     + " | ".join(_fmt(r.get(c[1]), c[2]) for c in cols) + " |")
    return "\n".join(lines)


def bytes_per_estimate(harness: Harness, n_replicates: int) -> float:
    """Bytes of tensors allocated per estimate by one run of ``harness`` (the torch profiler's
    allocation events, frees not subtracted): what the run writes to memory, the input of the
    memory-bandwidth bound a GPU would put on it (it reads back about as much)."""
    from torch.profiler import ProfilerActivity, profile

    harness.run(n_replicates)  # compiles, if compiled
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        harness.run(n_replicates)
    allocated = sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)
    return allocated / n_replicates


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
        "from bench.harness import measure_estimates\nfrom bench.problems import make_problem\n"
        "from estimators import make_estimator\n"
        "t = time.perf_counter()\n"
        f"m = measure_estimates(make_problem('gaussian_quadratic'), make_estimator('score_function'), "
        f"n_samples={n_samples}, n_replicates={n_replicates})\n"
        "print(json.dumps(dict(import_mb=base, peak_mb=hwm(), seconds=time.perf_counter() - t)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter rounds (a few minutes)")
    parser.add_argument("--out", default="results/perf/perf.csv", help="CSV to write (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1e6 x 100 peak-memory run")
    parser.add_argument("--compile", action="store_true", help="also time the compile=true harness")
    parser.add_argument("--peers", action="store_true", help="also time optax.monte_carlo under jax.jit")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (synchronised timing)")
    parser.add_argument("--no-trainer", action="store_true", help="skip the trainer's table")
    parser.add_argument("--chunk-sweep", action="store_true",
                        help="also the rates against chunk size (and, on a GPU, the peak memory at the default)")
    parser.add_argument("--chunk-elements", type=int, default=None,
                        help="elements per chunk of every method (default: the harness's for the device)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: device=cuda is not available on this machine", file=sys.stderr)
        return 2
    peers = args.peers and peers_available()
    if args.peers and not peers:
        print(f"note: {PEERS_HINT}; measuring without it", file=sys.stderr)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {args.device} ({name})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for p, o, e, n, R in cases(args.quick, args.device):
        rows.append(measure_case(p, o, e, n, R, quick=args.quick, compile=args.compile, peers=peers, device=args.device,
                                 naive=not (n == 100 and R > 100_000), chunk_elements=args.chunk_elements))
        # Written after every row: a run stopped part-way keeps what it measured.
        pd.DataFrame(rows).assign(torch_version=torch.__version__, threads=torch.get_num_threads(),
                                  machine=name).to_csv(out, index=False)
    df = pd.DataFrame(rows).assign(torch_version=torch.__version__, threads=torch.get_num_threads(), machine=name)
    if not args.no_memory:
        mem = peak_memory_mb(1_000_000, 100)
        print(f"n_replicates=1e6, n_samples=100: peak resident memory {mem['peak_mb']:.0f} MB "
              f"(after importing torch {mem['import_mb']:.0f} MB), {mem['seconds']:.1f} s")
        df["peak_rss_mb_1e6x100"] = mem["peak_mb"]
        df["import_rss_mb"] = mem["import_mb"]
    if args.device == "cpu":  # the input of the README's bound for a GPU
        for mode in (False, True) if args.compile else (False,):
            h = Harness(make_problem("gaussian_quadratic"), make_estimator("score_function"), n_samples=1, compile=mode)
            b = bytes_per_estimate(h, h.chunk)
            df[f"bytes_per_estimate_{'compiled' if mode else 'eager'}"] = b
            print(f"score_function, n_samples=1, {'compiled' if mode else 'eager'}: {b:.0f} bytes allocated per estimate")
    df.to_csv(out, index=False)
    print(markdown_table(df))
    if args.chunk_sweep:
        tag = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"
        sweep = chunk_sweep(args.device, peers).assign(torch_version=torch.__version__,
                                                       threads=torch.get_num_threads(), machine=name)
        sweep.to_csv(out.with_name(f"chunks{tag}.csv"), index=False)
        if args.device.startswith("cuda"):
            memory = peak_gpu_memory(args.device)
            memory.to_csv(out.with_name(f"chunks{tag}_memory.csv"), index=False)
            print(memory.to_string(index=False))
    if not args.no_trainer:
        trainer = trainer_table(args.quick, device=args.device)
        trainer.to_csv(out.with_name("trainer.csv" if args.device == "cpu" else
                                     f"trainer_{args.device.replace(':', '')}.csv"), index=False)
        print()
        print(trainer_markdown(trainer))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
