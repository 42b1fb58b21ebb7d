"""The timed methods of the speed benchmark: the naive loop, the harness, the closed form and the
jit-compiled peer (``optax.monte_carlo``), each as a rate in estimates per second."""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
from torch.utils.benchmark import Timer

from estimators import Sampler

from ..harness import DEFAULT_CHUNK_ELEMENTS, Harness

PEERS_HINT = "the peer needs the optional extra: pip install -e '.[peers]' (jax, optax==0.2.6)"


def _median_seconds(fn, min_run_time: float, device: str = "cpu") -> float:
    """Median wall time of one call of ``fn`` (``torch.utils.benchmark.Timer``: a warm-up, then
    blocks of calls; CUDA synchronised)."""
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def _alternating(methods: dict, rounds: int) -> dict:
    """Each method's rate (a call returns one), measured in turn over ``rounds`` rounds (the
    machine's speed drifts; alternating keeps the ratios fair): ``<method>_per_s``, the median, and
    ``<method>_spread``, (max - min) / median."""
    rates = {m: [] for m in methods}
    for _ in range(rounds):
        for m, fn in methods.items():
            rates[m].append(fn())
    out = {}
    for m, values in rates.items():
        values = sorted(values)
        median = float(pd.Series(values).median())
        out[f"{m}_per_s"] = median
        out[f"{m}_spread"] = float((values[-1] - values[0]) / median)
    return out


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
        from optax._src.utils import (
            multi_normal,  # the distribution builder optax.monte_carlo documents
        )

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
        # The first run less the fastest of three compiled ones; about 0 (never below) when XLA
        # reuses the compilation of the same program from an earlier row with the same chunks.
        self.compile_s = max(0.0, time.perf_counter() - start - min(self._steady() for _ in range(3)))

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
