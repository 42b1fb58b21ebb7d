"""The speed table's rows: every method timed in alternation on one case, the cases of a CPU and
of a GPU, and the chunk-size sweep."""

from __future__ import annotations

import time

import pandas as pd

from estimators import make_estimator

from ..harness import Harness, default_chunk_elements
from ..problems import make_problem
from .methods import Peer, _alternating, _median_seconds, closed_form_rate, harness_rate, naive_rate


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
    row = dict(problem=pname, dim=popts.get("dim", ""), estimator=ename, n_samples=n, n_replicates=reps, device=device,
               chunk_elements=chunk_elements, **_alternating(methods, rounds))
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
