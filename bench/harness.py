"""The measuring harness: R independent gradient estimates, batched as a tensor dimension.

For each chunk of replicates, phi gets a leading ``[C]`` dimension as an independent leaf; the C
surrogates are summed and one backward pass gives the C estimates as rows of ``phi.grad``. They are
mapped to theta by the Jacobian of ``encode``, taken once (exact, because the cost does not depend
on theta), and reduced into :class:`bench.statistics.GradientMoments` as they come, so memory stays
bounded whatever ``n_replicates``. Random numbers come from one generator seeded by ``seed``.

With ``compile=True`` the surrogate and the statistics' chunk sums run through ``torch.compile``;
the noise is still drawn by the job's generator, outside the compiled code and in the same order,
so the estimates are the eager ones up to floating-point rounding.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from estimators import Estimator, Sampler
from estimators.base import ConfigError, Cost
from estimators.sampling import PredrawnSampler, RecordingSampler

from .problems import Problem
from .statistics import GradientMoments, Projection

DEFAULT_CHUNK_ELEMENTS = 2**19


@dataclass
class Measurement:
    rows: list[dict]
    n_replicates: int
    n_nonfinite: int
    seconds: float
    estimates: torch.Tensor | None = None  # [R, P_theta], only with keep_estimates

    @property
    def status(self) -> str:
        return "nonfinite" if self.n_nonfinite else "ok"

    @property
    def message(self) -> str:
        if not self.n_nonfinite:
            return ""
        return (f"{self.n_nonfinite} of {self.n_replicates} estimates had non-finite entries; "
                f"statistics use the {self.n_replicates - self.n_nonfinite} finite ones")


def flat(tensors: dict[str, torch.Tensor], leading: int = 0) -> torch.Tensor:
    """Concatenate a dict of tensors, keeping ``leading`` leading dimensions."""
    return torch.cat([v.reshape(*v.shape[:leading], -1) for v in tensors.values()], dim=leading)


def exact_gradients(problem: Problem, theta: dict[str, torch.Tensor]):
    """phi at theta, the Jacobian of encode (``None`` for the identity), and the exact gradient
    of the objective with respect to phi (``None`` when the problem has no exact value)."""
    if problem.identity_encode:
        jac = None
    else:
        names = list(theta)

        def encode_flat(*values):
            return flat(problem.encode(dict(zip(names, values))))

        # One backward pass per phi coordinate (phi is small); torch.func.jacrev gives the same
        # result but costs about a second on its first call.
        parts = torch.autograd.functional.jacobian(encode_flat, tuple(theta.values()))
        jac = torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=1).detach()
    with torch.no_grad():
        phi0 = {k: v.detach() for k, v in problem.encode(theta).items()}
    exact = None
    if problem.has_exact:
        leaves = {k: v.clone().requires_grad_(True) for k, v in phi0.items()}
        objective = problem.expected_cost(problem.distribution(leaves)).sum()
        grads = torch.autograd.grad(objective, list(leaves.values()), allow_unused=True)
        exact = torch.cat([(torch.zeros_like(v) if g is None else g).reshape(-1) for g, v in zip(grads, leaves.values())]).detach()
    return phi0, jac, exact


def replicate(phi0: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """phi with a leading ``[n]`` replicate dimension, as independent leaves."""
    return {k: v.expand(n, *v.shape).clone().requires_grad_(True) for k, v in phi0.items()}


def problem_cost(problem: Problem) -> Cost:
    """The problem's cost as estimators see it (with its exact expectation when there is one)."""
    return Cost(problem.cost, problem.expected_cost if problem.has_exact else None)


def chunk_size(problem: Problem, phi0, n_samples: int, chunk_elements: int) -> int:
    event = problem.distribution(replicate(phi0, 1)).event_shape
    return max(1, chunk_elements // (n_samples * max(1, math.prod(event))))


class Harness:
    """Measures ``estimator`` on ``problem`` at a fixed theta. The set-up that does not depend on
    the number of replicates or the seed (exact gradient, Jacobian of encode, applicability) is
    done once here; :meth:`run` makes the batched estimates and their statistics."""

    def __init__(self, problem: Problem, estimator: Estimator, *, n_samples: int,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, compile: bool = False):
        self.problem, self.estimator, self.n_samples = problem, estimator, n_samples
        self.device, self.dtype = device, dtype
        theta = problem.init_params(device, dtype)
        self.phi0, jac, self.exact_phi = exact_gradients(problem, theta)
        self.cost = problem_cost(problem)
        one = problem.distribution(replicate(self.phi0, 1))
        estimator.check(one, n_samples, self.cost)
        self.evals_per_estimate = estimator.evals_per_estimate(n_samples, one)
        self.projection = Projection({k: v.numel() for k, v in theta.items()}, jac).to(device)
        # Bound the elements an estimate touches: samples times evaluations of the cost.
        self.chunk = max(1, chunk_size(problem, self.phi0, n_samples, chunk_elements)
                         * n_samples // max(n_samples, self.evals_per_estimate))
        self.compiled = None
        if compile:
            if estimator.init_state() is not None:
                raise ConfigError("compile", True, f"{estimator.describe()} keeps state between estimates; "
                                  "compile=true supports stateless estimators")
            # Dynamo caps recompilations per code object across instances; a job has one harness.
            torch.compiler.reset()
            self.compiled = torch.compile(self._surrogate_of_noise, dynamic=False)
            self.compiled_sums = torch.compile(GradientMoments.gram_sums, dynamic=False)
            self._plans: dict[int, list] = {}

    def _call_surrogate(self, phi: dict[str, torch.Tensor], sampler: Sampler, state) -> torch.Tensor:
        return self.estimator.surrogate(self.problem.distribution(phi), self.cost, self.n_samples, sampler, state,
                                        params=phi)

    def _surrogate_of_noise(self, phi_values: list[torch.Tensor], noises: list[torch.Tensor]) -> torch.Tensor:
        """The surrogate with the random numbers as inputs (what ``compile=true`` compiles)."""
        return self._call_surrogate(dict(zip(self.phi0, phi_values)), PredrawnSampler(noises), None)

    def _noise_plan(self, c: int) -> list:
        """The draws a chunk of ``c`` replicates makes, recorded once by a dry run."""
        if c not in self._plans:
            recorder = RecordingSampler(torch.Generator(device=self.device).manual_seed(0))
            self._call_surrogate(replicate(self.phi0, c), recorder, None)
            self._plans[c] = recorder.plan
        return self._plans[c]

    def _surrogate(self, c: int, sampler: Sampler, state) -> tuple[dict, torch.Tensor]:
        phi = replicate(self.phi0, c)
        if self.compiled is None:
            return phi, self._call_surrogate(phi, sampler, state)
        like = next(iter(self.phi0.values()))
        noises = [getattr(sampler, kind)(shape, like) for kind, shape in self._noise_plan(c)]
        return phi, self.compiled(list(phi.values()), noises)

    def run(self, n_replicates: int, seed: int = 0, keep_estimates: bool = False, progress: bool = False) -> Measurement:
        if n_replicates < 2:
            raise ConfigError("n_replicates", n_replicates, "must be an integer >= 2")
        start = time.perf_counter()
        estimator = self.estimator
        moments = GradientMoments(self.projection, self.device)
        if self.compiled is not None:
            moments.chunk_sums = self.compiled_sums
        sampler = Sampler.seeded(seed, self.device)
        state = estimator.init_state()
        C = self.chunk
        kept, n_bad = [], 0
        n_chunks = math.ceil(n_replicates / C)
        bar = tqdm(total=n_replicates, unit="rep", desc=estimator.name, disable=not progress or n_chunks < 4, leave=False)
        for lo in range(0, n_replicates, C):
            c = min(C, n_replicates - lo)
            phi, surrogate = self._surrogate(c, sampler, state)
            grads = torch.autograd.grad(surrogate.sum(), list(phi.values()), allow_unused=True)
            # One column per replicate: [P_phi, c] (see GradientMoments.update).
            G = torch.cat([(torch.zeros_like(v) if g is None else g).reshape(c, -1).T
                           for g, v in zip(grads, phi.values())], 0)
            if not bool(torch.isfinite(G.sum())):  # fast path; the sum can overflow, so then look closer
                finite = torch.isfinite(G).all(0)
                n_bad += int((~finite).sum())
                G = G[:, finite]
            moments.update(G)
            if keep_estimates:
                kept.append(self.projection.to_theta(G.T.to(torch.float64)).cpu())
            bar.update(c)
        bar.close()
        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize()
        rows = moments.result(self.exact_phi, self.dtype)
        return Measurement(
            rows=rows,
            n_replicates=n_replicates,
            n_nonfinite=n_bad,
            seconds=time.perf_counter() - start,
            estimates=torch.cat(kept) if keep_estimates else None,
        )


def measure(
    problem: Problem,
    estimator: Estimator,
    *,
    n_samples: int,
    n_replicates: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    keep_estimates: bool = False,
    progress: bool = False,
) -> Measurement:
    """Measure ``estimator`` on ``problem``: statistics of ``n_replicates`` independent estimates,
    each from ``n_samples`` samples, computed in batched chunks."""
    start = time.perf_counter()
    harness = Harness(problem, estimator, n_samples=n_samples, device=device, dtype=dtype,
                      chunk_elements=chunk_elements)
    m = harness.run(n_replicates, seed, keep_estimates=keep_estimates, progress=progress)
    m.seconds = time.perf_counter() - start
    return m
