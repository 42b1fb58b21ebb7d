"""Calibration of the printed statistics by simulation: ``python -m bench.calibrate [--quick]``.

For a set of cases it runs many independent jobs at the same theta (batched: the seeds are the
harness's run dimension, so thousands of jobs cost one harness run) and reports, against exact
values:

* ``false_flags``: the jobs whose bias test fires, with the Clopper-Pearson 95 % interval of their
  fraction (the stated level is 0.1 % for an unbiased estimator; for the ``power`` cases, biased
  estimators, it is the test's power); ``untested``: jobs whose test was left empty (no coordinate
  the t test can hold its level on at that ``n_replicates``, said in the job's message);
* ``coverage``: the fraction of jobs whose ``variance +- 1.96 variance_se`` contains the exact
  variance (95 % when the standard error is right), with its 95 % interval;
* ``sd_over_rms_se``: the spread of ``variance`` across jobs over the root-mean-square of the
  reported ``variance_se`` (1 when the standard error means what it says);
* ``zero_se``, ``negative_variance``: jobs that reported ``variance_se = 0`` (always with a message
  saying why) or a negative variance (never);
* ``power_5se``: the fraction of jobs flagged when a bias of 5 standard errors of the mean is
  injected along one phi coordinate (for policy_mlp: along dE/dmu).

The cases: the first six (every kind of estimate the harness makes, at R = 2e4), then where LLM
training lives (``sparse_rloo``: RLOO on the sequence policy's sparse verifier rewards, G = 4, 8,
16; ``rare_category``: the score function on a categorical whose other categories have
probabilities 0.007 to 0.0009; ``rare_bit``: a bit with p = 0.001; all at R = 2000),
``disarm_stationary`` (DisARM's two-valued estimate on one bit, whose variance's law is at a
stationary point at p = 1/4), ``ema_short`` (the EMA baseline's warm-up at R = 5000 and 2e4) and
``power`` (biased estimators 4-5 standard errors off at R = 2000). ``--replicates 2000,5000,10000``
repeats the table at other ``n_replicates``: the statistics are computed there even below the
floors the benchmark enforces, which is how those floors were chosen. The table is printed and
written to a new ``results/runs/calibrate/`` folder (``--update-committed``:
``results/calibration/calibration.csv``, the README's table).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from estimators import Estimator, make_estimator

from .exact_variance import exact_variance
from .geometry import with_runs
from .harness import Harness
from .problems import make_problem
from .results import RESULTS_DIR, regeneration_folder
from .statistics import SIGNIFICANCE_LEVEL

Z_95 = 1.959963984540054  # the two-sided 95 % normal quantile


@dataclass
class Case:
    name: str
    problem: str
    estimator: str
    n_samples: int
    seeds: int  # jobs in the full run (slow cases fewer)
    problem_options: dict = field(default_factory=dict)
    estimator_options: dict = field(default_factory=dict)
    inject: tuple[str, int] = ("", 0)  # the phi tensor and coordinate the power test biases
    chunk_replicates: int | None = None  # force this many replicates per chunk
    power_seeds: int | None = None  # jobs for the power test (default: seeds)
    replicates: tuple[int, ...] = (20_000,)  # n_replicates per job (--replicates overrides)
    biased: bool = False  # the estimator is biased: its flags are the test's power, not false flags
    key: str = ""  # a short name for --cases


RLOO = {"center": "loo", "scale": "none", "aggregation": "seq_mean_token_sum"}
CASES = [
    Case("score_function on gaussian_quadratic", "gaussian_quadratic", "score_function", 1, 2000,
         inject=("sigma", 0)),
    Case("reparameterization on gaussian_quadratic", "gaussian_quadratic", "reparameterization", 1, 2000,
         inject=("mu", 0)),
    Case("EMA baseline (decay 0.99) on bernoulli_toy", "bernoulli_toy", "score_function_baseline", 1, 2000,
         estimator_options={"baseline": "ema", "decay": 0.99}, inject=("logits", 0)),
    Case("measure_valued on gaussian_quadratic dim=100", "gaussian_quadratic", "measure_valued", 10, 300,
         problem_options={"dim": 100}, inject=("mu", 0), power_seeds=100),
    Case("score_function on policy_mlp", "policy_mlp", "score_function", 10, 2000, inject=("mu", 0)),
    Case("arm on bernoulli_quadratic dim=4, one replicate per chunk", "bernoulli_quadratic", "arm", 1, 2000,
         problem_options={"dim": 4}, inject=("logits", 0), chunk_replicates=1),
    # Where LLM training lives: sparse rewards, rare outcomes (issue 24), at R = 2000.
    *[Case(f"sparse_rloo: rloo on sequence_policy, G = {G}", "sequence_policy", "group_advantage", G, 2000,
           estimator_options=RLOO, replicates=(2000,), key="sparse_rloo") for G in (4, 8, 16)],
    *[Case(f"rare_category: score_function on categorical_bandit, logits [{L},0,0,0]", "categorical_bandit",
           "score_function", 1, 2000, problem_options={"logits": [float(L), 0.0, 0.0, 0.0]}, replicates=(2000,),
           key="rare_category") for L in (5, 6, 7)],
    Case("rare_bit: score_function on bernoulli_toy, p = 0.001", "bernoulli_toy", "score_function", 1, 2000,
         problem_options={"p": 0.001}, replicates=(2000,), key="rare_bit"),
    *[Case(f"disarm_stationary: disarm on bernoulli_toy, p = {p}", "bernoulli_toy", "disarm", 1, 2000,
           problem_options={"p": p}, replicates=(2000, 20_000), key="disarm_stationary") for p in (0.25, 0.3)],
    *[Case(f"ema_short: EMA baseline (decay {d}) on bernoulli_toy", "bernoulli_toy", "score_function_baseline", 1,
           2000, estimator_options={"baseline": "ema", "decay": d}, replicates=(5000, 20_000), key="ema_short")
      for d in (0.9, 0.99)],
    # The test's power on biased estimators whose bias is 4-5 standard errors at R = 2000.
    Case("power: gumbel_softmax (T = 0.2) on bernoulli_toy", "bernoulli_toy", "gumbel_softmax", 1, 2000,
         estimator_options={"temperature": 0.2}, replicates=(2000,), biased=True, key="power"),
    Case("power: straight_through (T = 0.3) on bernoulli_toy", "bernoulli_toy", "straight_through", 1, 2000,
         estimator_options={"temperature": 0.3}, replicates=(2000,), biased=True, key="power"),
    Case("power: dr_grpo (G = 160) on bernoulli_toy", "bernoulli_toy", "group_advantage", 160, 2000,
         estimator_options={"center": "mean", "scale": "none", "aggregation": "seq_mean_token_sum"}, replicates=(2000,),
         biased=True, key="power"),
]


class InjectedBias(Estimator):
    """An estimator plus a constant ``delta`` on one phi coordinate of every estimate: a known bias."""

    name = "injected_bias"

    def __init__(self, inner: Estimator, param: str, index: int, delta: float):
        super().__init__()
        self.inner, self.param, self.index, self.delta = inner, param, index, delta
        for attr in ("requires", "families", "evals_per_sample", "min_samples", "stateful"):
            setattr(self, attr, getattr(inner, attr))

    def evals_per_estimate(self, n_samples, dist=None):
        return self.inner.evals_per_estimate(n_samples, dist)

    def elements_per_sample(self, dist, cost=None):
        return self.inner.elements_per_sample(dist, cost)

    def init_state(self):
        return self.inner.init_state()

    def memory_steps(self):
        return self.inner.memory_steps()

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        out = self.inner.surrogate(dist, cost, n_samples, sampler, state, params)
        p = params[self.param]
        batch = len(dist.batch_shape)
        return out + self.delta * p.reshape(*p.shape[:batch], -1)[..., self.index]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    lo = stats.beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def _harness(case: Case, estimator: Estimator, n_seeds: int) -> Harness:
    problem = make_problem(case.problem, case.problem_options)
    theta = {k: v.expand(n_seeds, *v.shape[1:]).clone()
             for k, v in with_runs(None, problem, "cpu", torch.float32).items()}
    harness = Harness(problem, estimator, n_samples=case.n_samples, theta=theta, chunk_elements=2**21)
    if case.chunk_replicates is not None:  # the case's own chunking (the statistics must hold whatever it is)
        harness.chunk = case.chunk_replicates
    return harness


def _totals(m) -> pd.DataFrame:
    return pd.DataFrame([r for r in m.rows if r["param"] == "total"])


def run_case(case: Case, n_seeds: int, n_replicates: int, seed: int = 0, power_seeds: int | None = None) -> dict:
    start = time.perf_counter()
    problem = make_problem(case.problem, case.problem_options)
    estimator = make_estimator(case.estimator, case.estimator_options)
    harness = _harness(case, estimator, n_seeds)
    m = harness.run(n_replicates, seed, floors=False)
    totals = _totals(m)
    known = exact_variance(problem, estimator, case.n_samples, n_replicates)
    exact = known["total"] if known else math.nan
    var, se = totals["variance"].to_numpy(), totals["variance_se"].to_numpy(dtype=float)
    tested = totals["bias_significant"].notna().to_numpy()
    flags = totals["bias_significant"].map(lambda v: v is True).to_numpy()
    k = int(flags.sum())
    lo, hi = clopper_pearson(k, n_seeds)
    covered = np.abs(var - exact) <= Z_95 * se
    c_lo, c_hi = clopper_pearson(int(covered.sum()), n_seeds)
    has_se = np.isfinite(se).all() and math.isfinite(exact)
    row = dict(case=case.name, key=case.key, biased=case.biased, n_replicates=n_replicates, n_jobs=n_seeds,
               exact_variance=exact, mean_variance=float(var.mean()), false_flags=k, false_flag_rate=k / n_seeds,
               false_flag_lo=lo, false_flag_hi=hi, untested=int((~tested).sum()),
               level_ok=bool(case.biased or lo <= SIGNIFICANCE_LEVEL),
               coverage=float(covered.mean()) if has_se else math.nan, coverage_lo=c_lo if has_se else math.nan,
               coverage_hi=c_hi if has_se else math.nan,
               sd_over_rms_se=float(var.std(ddof=1) / np.sqrt(np.mean(se**2))) if has_se else math.nan,
               zero_se=int((se == 0).sum()), negative_variance=int((var < 0).sum()))
    if case.inject[0]:
        names = list(harness.phi0)
        offset = sum(harness.phi0[n][0].numel() for n in names[: names.index(case.inject[0])])
        coordinate_var = float(m.phi_variance[:, offset + case.inject[1]].mean())
        delta = 5 * math.sqrt(coordinate_var / n_replicates)
        biased = InjectedBias(estimator, case.inject[0], case.inject[1], delta)
        flagged = _totals(_harness(case, biased, power_seeds or n_seeds).run(n_replicates, seed + 1, floors=False))
        row["power_5se"] = float(flagged["bias_significant"].map(lambda v: v is True).mean())
        row["power_jobs"] = len(flagged)
    row["seconds"] = time.perf_counter() - start
    return row


def _rate(k: int, n: int, lo: float, hi: float) -> str:
    return f"{k} = {100 * k / n:.2f} % ({100 * lo:.2f}-{100 * hi:.2f} %)"


def markdown_table(df: pd.DataFrame) -> str:
    biased = df["biased"].astype(bool) if "biased" in df else pd.Series(False, index=df.index)
    untested = df["untested"] if "untested" in df else pd.Series(0, index=df.index)
    coverage = df["coverage"] if "coverage" in df else df["coverage_2se"]
    out = pd.DataFrame({
        "case": df["case"], "R": df["n_replicates"].map(lambda v: f"{v:.0e}"), "jobs": df["n_jobs"],
        "flagged (95 % CI)": [("power " if b else "false ") + _rate(r.false_flags, r.n_jobs, r.false_flag_lo,
                                                                    r.false_flag_hi)
                              for b, r in zip(biased, df.itertuples())],
        "bias test left empty": untested,
        "±1.96 SE coverage (95 % CI)": [
            "no SE (too few batches)" if pd.isna(c) and "coverage_lo" not in df else
            ("" if pd.isna(c) else f"{100 * c:.1f} %" + (f" ({100 * r.coverage_lo:.1f}-{100 * r.coverage_hi:.1f})"
                                                         if "coverage_lo" in df and pd.notna(r.coverage_lo) else ""))
            for c, r in zip(coverage, df.itertuples())],
        "sd(variance) / rms(SE)": df["sd_over_rms_se"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
        "SE = 0": df["zero_se"],
        "power at 5 SE": df.get("power_5se", pd.Series(math.nan, index=df.index)).map(
            lambda v: "" if pd.isna(v) else f"{100 * v:.1f} %"),
    })
    return out.to_markdown(index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the jobs per case (at least 30)")
    parser.add_argument("--replicates", default=None,
                        help="n_replicates per job, comma-separated (default: each case's own, 20000 for most)")
    parser.add_argument("--cases", nargs="+", default=None, help="only the cases whose name starts with one of these "
                        "texts or whose short key is one of them (sparse_rloo, rare_category, rare_bit, "
                        "disarm_stationary, ema_short, power)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="the CSV to write (default: calibration.csv in a new "
                        "results/runs/calibrate/ folder; with --update-committed, results/calibration/calibration.csv)")
    parser.add_argument("--update-committed", action="store_true",
                        help="write the committed file the README's table is made from")
    args = parser.parse_args(argv)
    rows = []
    given = [int(float(r)) for r in args.replicates.split(",")] if args.replicates else None
    for case in CASES:
        if args.cases and not any(case.name.startswith(c) or c == case.key for c in args.cases):
            continue
        for R in given or case.replicates:
            n = max(30, case.seeds // 10) if args.quick else case.seeds
            power = min(n, case.power_seeds or n)
            row = run_case(case, n, R, args.seed, power)
            rows.append(row)
            print(f"{case.name} (R={R}, {n} jobs, {row['seconds']:.0f} s): flagged {row['false_flags']} "
                  f"(test left empty in {row['untested']}), coverage {100 * row['coverage']:.1f} %, sd/rms "
                  f"{row['sd_over_rms_se']:.3f}, power at 5 SE {100 * row.get('power_5se', math.nan):.1f} %",
                  flush=True)
    df = pd.DataFrame(rows)
    out = Path(args.out) if args.out else regeneration_folder(
        "calibrate", RESULTS_DIR / "calibration", args.update_committed) / "calibration.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print()
    print(markdown_table(df))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
