"""The new workloads' speed (``python -m bench.perf --workloads``): the digits VAE's exact
enumeration against the matrix-multiply rate of the same shapes, and one estimate per estimator on
the digits VAE and on the sequence policy (max_length 5 and 8, every aggregation) and of the IWAE
bound's encoder gradient (pathwise, STL, DReG at K = 8 and 64) batched by the harness (for IWAE, by
:mod:`bench.iwae`'s tensor dimensions) against a naive loop (one surrogate call and one
``backward()`` through ``encode`` per estimate, the estimator's own code on a one-replicate
distribution). Rates are medians over rounds timed in alternation, with the spread over rounds."""

from __future__ import annotations

import copy

import pandas as pd
import torch

from estimators import Sampler, make_estimator

from ..geometry import gradients
from ..harness import Harness
from ..presets import build
from ..problems import make_problem
from .methods import _alternating, _median_seconds

VAE = {"variables": 12, "n_data": 64}
VAE_ESTIMATORS = ("score_function", "score_function_loo", "arm", "disarm", "rebar", "relax", "gumbel_softmax",
                  "straight_through", "gumbel_rao", "reinmax", "indecater", "double_cv")
SEQUENCE_REPLICATES = 100_000  # the n_replicates of the group experiments (conf/experiment/group_*.yaml)
AGGREGATIONS = ("seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm", "token_mean",
                "token_mean_microbatch", "token_sum")


def enumeration_row(n_data: int, rounds: int, t: float) -> dict:
    """The exact negative ELBO term and its gradient (encoder and decoder) by enumeration, against
    the same three matrix products (and their backward: twice as many) on their own."""
    problem = make_problem("digits_vae", {**VAE, "n_data": n_data})
    theta = {k: v.unsqueeze(0).requires_grad_(True) for k, v in problem.init_params("cpu", torch.float32).items()}
    model = {k: v.float().clone().requires_grad_(True) for k, v in problem.model_parameters().items()}
    problem.set_model_parameters(model)
    leaves = list(theta.values()) + list(model.values())

    def exact():
        value = problem.expected_cost(problem.distribution(problem.encode(theta))).sum()
        torch.autograd.grad(value, leaves)

    K, w, N = 2**problem.variables, problem.width, n_data
    a, codes = torch.randn(N, w), torch.randn(K, w)
    dec, x = torch.randn(w, 64), torch.randn(64, N)

    def matmuls():  # the forward products and the backward's two per product
        for _ in range(3):
            (a @ codes.T).sum()
            (codes @ dec) @ x
    macs = K * (N * (w + 64) + 64 * w)
    rates = _alternating({"enumeration": lambda: 1 / _median_seconds(exact, t),
                          "matmul": lambda: 1 / _median_seconds(matmuls, t)}, rounds)
    return dict(workload="digits_vae exact gradient", problem="digits_vae", estimator="exact (enumeration)",
                n_data=N, codes=K, n_samples="", macs_forward=macs,
                enumeration_gflops=3 * 2 * macs * rates["enumeration_per_s"] / 1e9,
                matmul_gflops=3 * 2 * macs * rates["matmul_per_s"] / 1e9,
                enumeration_vs_matmul=rates["matmul_per_s"] / rates["enumeration_per_s"], **rates)


def elementwise_rate(t: float) -> float:
    """Elements per second of one elementwise pass (softplus, float32) over 2^24 values: the
    machine's memory-bound rate, the unit of the ceilings below."""
    x = torch.randn(2**24)
    return x.numel() / _median_seconds(lambda: torch.nn.functional.softplus(x), t)


def touched_per_estimate(problem, n: int) -> int:
    """The values one estimate cannot avoid touching once: the cost's per-sample output layer (the
    digits VAE: n samples x N images x 64 pixels of decoder logits) or the distribution's parameters
    the harness replicates per estimate (the sequence policy's logit table)."""
    if problem.name == "digits_vae":
        return n * problem.n_data * 64
    theta = problem.init_params("cpu", torch.float32)
    return sum(v.numel() for v in problem.encode({k: v.unsqueeze(0) for k, v in theta.items()}).values())


def naive_surrogate_rate(problem, estimator, n_samples: int, iterations: int, t: float) -> float:
    """Estimates per second of a loop: one estimate per iteration, the estimator's surrogate on a
    one-replicate distribution and one backward() through encode to theta."""
    theta = {k: v.unsqueeze(0).requires_grad_(True) for k, v in problem.init_params("cpu", torch.float32).items()}
    params = list(theta.values())
    sampler = Sampler.seeded(0, "cpu")
    state = estimator.init_state()
    cost = problem.cost_function()
    one = problem.distribution({k: v.detach().unsqueeze(0) for k, v in problem.encode(theta).items()})
    estimator.prepare(one, cost, n_samples, sampler, state, fresh=True)

    def loop():
        for _ in range(iterations):
            phi = {k: v.unsqueeze(0) for k, v in problem.encode(theta).items()}
            gradients(estimator.surrogate(problem.distribution(phi), cost, n_samples, sampler, state, params=phi), params)

    return iterations / _median_seconds(loop, t)


def estimator_row(workload: str, pname: str, popts: dict, ename: str, eopts: dict, n: int, reps: int,
                  rounds: int, t: float, iterations: int, elements_per_s: float) -> dict:
    """The harness and the naive loop, and the ceiling: estimates per second if an estimate cost one
    elementwise pass over :func:`touched_per_estimate` values and nothing else (``ceiling_vs_naive``
    above 100 is where the >= 100x goal is possible at all; ``harness_vs_ceiling`` how near it is)."""
    problem = make_problem(pname, popts)
    new = lambda: make_estimator(ename, eopts) if eopts else build("estimator", ename)  # noqa: E731 (a preset name)
    estimator = new()
    harness = Harness(problem, estimator, n_samples=n)
    ready = harness.run(min(reps, 200)).initial_state  # warm-up: a learned control variate trains here, once
    naive_estimator = new()
    rates = _alternating({"harness": lambda: reps / _median_seconds(
                              lambda: harness.run(reps, state=copy.deepcopy(ready)), t),
                          "naive": lambda: naive_surrogate_rate(problem, naive_estimator, n, iterations, t)}, rounds)
    row = dict(workload=workload, problem=pname, estimator=estimator.describe(), n_samples=n, n_replicates=reps,
               **{f"problem.{k}": v for k, v in popts.items()}, **rates)
    row["harness_vs_naive"] = row["harness_per_s"] / row["naive_per_s"]
    row["touched_per_estimate"] = touched_per_estimate(problem, n)
    row["ceiling_per_s"] = elements_per_s / row["touched_per_estimate"]
    row["ceiling_vs_naive"] = row["ceiling_per_s"] / row["naive_per_s"]
    row["harness_vs_ceiling"] = row["harness_per_s"] / row["ceiling_per_s"]
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def iwae_row(estimator: str, K: int, reps: int, rounds: int, t: float, iterations: int) -> dict:
    """The IWAE bound's encoder gradient (:mod:`bench.iwae`): ``reps`` estimates batched (replicates,
    data and samples as tensor dimensions) against a loop of one estimate per iteration."""
    from ..iwae import THETA, LinearGaussian
    model = LinearGaussian()
    gen = torch.Generator().manual_seed(0)

    def loop():
        for _ in range(iterations):
            model.estimates(estimator, THETA, K, 1, gen)

    def batched():
        model.estimates(estimator, THETA, K, reps, gen)

    rates = _alternating({"harness": lambda: reps / _median_seconds(batched, t),
                          "naive": lambda: iterations / _median_seconds(loop, t)}, rounds)
    row = dict(workload="iwae (linear-Gaussian), one estimate", problem="iwae", estimator=estimator, n_samples=K,
               n_replicates=reps, **rates)
    row["harness_vs_naive"] = row["harness_per_s"] / row["naive_per_s"]
    print(row, flush=True)
    return row


def workload_table(quick: bool) -> pd.DataFrame:
    rounds, t = (3, 0.1) if quick else (5, 0.3)
    rows = []
    elements_per_s = elementwise_rate(t)
    print(f"one elementwise pass: {elements_per_s:.3g} values/s", flush=True)
    for N in (64, 200):
        rows.append(enumeration_row(N, rounds, t))
        print(rows[-1], flush=True)
    for ename in VAE_ESTIMATORS:
        rows.append(estimator_row("digits_vae, one estimate", "digits_vae", VAE, ename, {}, 2,
                                  500 if quick else 2000, rounds, t, 20 if quick else 50, elements_per_s))
    for length in (5, 8):
        for agg in AGGREGATIONS:
            opts = {"center": "mean", "scale": "group", "aggregation": agg}
            rows.append(estimator_row(f"sequence_policy max_length {length}", "sequence_policy",
                                      {"max_length": length}, "group_advantage", opts, 4,
                                      20_000 if quick else SEQUENCE_REPLICATES,
                                      rounds, t, 20 if quick else 50, elements_per_s))
    for estimator in ("iwae", "stl", "dreg"):
        for K in (8, 64):
            rows.append(iwae_row(estimator, K, 20_000 if quick else 100_000, rounds, t, 20 if quick else 50))
    return pd.DataFrame(rows)


def _ratio(v) -> str:
    return "" if pd.isna(v) else f"{v:.2g}"


def workload_markdown(df: pd.DataFrame) -> str:
    enum = df[df["workload"] == "digits_vae exact gradient"]
    part1 = pd.DataFrame({
        "images": enum["n_data"], "codes": enum["codes"], "exact gradients /s": enum["enumeration_per_s"].map("{:.3g}".format),
        "GFLOP/s": enum["enumeration_gflops"].map("{:.3g}".format),
        "matmul GFLOP/s": enum["matmul_gflops"].map("{:.3g}".format),
        "enumeration ÷ matmul time": enum["enumeration_vs_matmul"].map("{:.2f}".format),
        "spread": enum["enumeration_spread"].map("{:.0%}".format)}).to_markdown(index=False)
    est = df[df["workload"] != "digits_vae exact gradient"]
    part2 = pd.DataFrame({
        "workload": est["workload"], "estimator": est["estimator"], "n": est["n_samples"],
        "naive loop /s": est["naive_per_s"].map("{:.3g}".format), "harness /s": est["harness_per_s"].map("{:.3g}".format),
        "harness ÷ naive": est["harness_vs_naive"].map("{:.2g}".format),
        "spread (harness)": est["harness_spread"].map("{:.0%}".format),
        "ceiling ÷ naive": est.get("ceiling_vs_naive", pd.Series(float("nan"), est.index)).map(_ratio),
        "harness ÷ ceiling": est.get("harness_vs_ceiling", pd.Series(float("nan"), est.index)).map(_ratio),
    }).to_markdown(index=False)
    return part1 + "\n\n" + part2
