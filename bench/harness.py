"""The measuring harness: R independent gradient estimates, batched as a tensor dimension.

For each chunk of C replicates, phi gets a leading ``[C]`` dimension as an independent leaf (ahead
of the run dimension ``[S]``: S independent runs at their own theta, 1 for a job); the surrogates
are summed and one backward pass gives every estimate as a row of ``phi.grad``. They are mapped to
theta by the Jacobian of ``encode``, taken once per run (exact, because the cost does not depend
on theta), and reduced into :class:`bench.statistics.GradientMoments` as they come, so memory stays
bounded whatever ``n_replicates``. Random numbers come from the job's stream seeded by ``seed``
(:meth:`estimators.Sampler.seeded`: two generators, large draws split between them).

With ``compile=True`` each chunk's whole step runs through ``torch.compile``
(:mod:`bench.compiled`); the geometry (theta with runs, phi with replicates, the Jacobian of
``encode``, the exact gradient) is :mod:`bench.geometry`.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from estimators import Estimator, Sampler
from estimators.options import ConfigError

from .compiled import CompiledStep
from .geometry import exact_gradients, gather, gradients, replicate, with_runs
from .problems import Problem
from .statistics import STATE_LAGS, GradientMoments, Projection, batch_size

DEFAULT_CHUNK_ELEMENTS = 2**19  # on a CPU (results/perf/README.md: the chunk sweep)
CUDA_CHUNK_ELEMENTS = 2**21  # on a GPU, where a chunk's fixed cost dominates small chunks
# Seeds are below 2^31 (torch's CPU generator keeps 32 bits); a learning estimator's warm-up draws from
# seed + 2^31, so it never shares a stream with any job's measured one.
MAX_SEED = 2**31
WARMUP_SEED_OFFSET = 2**31


def default_chunk_elements(device: str | torch.device) -> int:
    """The sampled elements per chunk when none is given: :data:`CUDA_CHUNK_ELEMENTS` on a GPU,
    :data:`DEFAULT_CHUNK_ELEMENTS` otherwise."""
    return CUDA_CHUNK_ELEMENTS if str(device).startswith("cuda") else DEFAULT_CHUNK_ELEMENTS


def chunk_replicates(chunk_elements: int, n_runs: int, *, sampled: int, n_phi: int) -> int:
    """Replicates per chunk: at most ``chunk_elements`` sampled values (a replicate's ``sampled``:
    its samples times the values each touches, over every entry of the distribution's batch, the
    prompts or images of one estimate) and at most twice that many phi-space estimates (``n_phi``
    per replicate: the gradient and the statistics' passes), over all runs. Counting one batch
    entry's values only, as before, made the digits VAE's chunks 64x and the sequence policy's 10x
    larger than that, and 2-3.5x (VAE) and 1.3x (sequence) slower (results/perf/README.md)."""
    return max(1, min(chunk_elements // max(1, sampled * n_runs), 2 * chunk_elements // max(1, n_phi * n_runs)))


@dataclass
class Measurement:
    """The statistics of one harness run. ``rows``: one dict per (run, parameter) with a ``run``
    key; ``n_nonfinite`` and ``messages`` per run; ``estimates``: ``[S, R, P_theta]`` with
    ``keep_estimates``."""

    rows: list[dict]
    n_replicates: int
    n_nonfinite: list[int]
    seconds: float
    messages: list[list[str]] = field(default_factory=list)
    estimates: torch.Tensor | None = None
    initial_state: object = None  # a stateful estimator's state when the measured replicates began
    moments: GradientMoments | None = field(default=None, repr=False)  # the sums behind the rows

    @functools.cached_property
    def phi_variance(self) -> torch.Tensor:
        """``[S, P_phi]``: each phi coordinate's variance per run (made on first use)."""
        return self.moments.phi_variance().cpu()

    def run_rows(self, run: int = 0) -> list[dict]:
        return [r for r in self.rows if r["run"] == run]

    def status(self, run: int = 0) -> str:
        return "nonfinite" if self.n_nonfinite[run] else "ok"

    def message(self, run: int = 0) -> str:
        parts = []
        if self.n_nonfinite[run]:
            bad = self.n_nonfinite[run]
            parts.append(f"{bad} of {self.n_replicates} estimates had non-finite entries; "
                         f"statistics use the {self.n_replicates - bad} finite ones")
        return "; ".join(parts + list(self.messages[run] if self.messages else []))


class Harness:
    """Measures ``estimator`` on ``problem``, at the problem's initial theta or at given thetas
    (``theta``: tensors with a leading run dimension, one independent measurement per run). The
    set-up that does not depend on the number of replicates or the seed (exact gradient, Jacobian
    of encode, applicability) is done once here; :meth:`run` makes the batched estimates and
    their statistics."""

    def __init__(self, problem: Problem, estimator: Estimator, *, n_samples: int,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 chunk_elements: int | None = None, compile: bool = False,
                 theta: dict[str, torch.Tensor] | None = None, sampling: str = "iid"):
        self.problem, self.estimator, self.n_samples = problem, estimator, n_samples
        self.sampling = sampling  # how the samples of one estimate are drawn (estimators.sampling)
        self.device, self.dtype = device, dtype
        theta = with_runs(theta, problem, device, dtype)
        self.n_runs = next(iter(theta.values())).shape[0]
        self.phi0, jac, self.exact_phi = exact_gradients(problem, theta)
        one = problem.distribution(replicate({k: v[:1] for k, v in self.phi0.items()}, 1))
        self.cost = problem.cost_function().checked(one)
        estimator.check(one, n_samples, self.cost)
        self.evals_per_estimate = estimator.evals_per_estimate(n_samples, one)
        self.projection = Projection({k: v[0].numel() for k, v in theta.items()}, jac,
                                     problem.phi_components()).to(device)
        chunk_elements = default_chunk_elements(device) if chunk_elements is None else chunk_elements
        sampled = n_samples * estimator.elements_per_sample(one, self.cost) * one.batch_shape.numel()
        self.chunk = chunk_replicates(chunk_elements, self.n_runs, sampled=sampled, n_phi=self.projection.n_phi)
        self.moment_warning = problem.moment_warning()
        self._one_step = problem.distribution(replicate(self.phi0, 1))  # what an estimator prepares at
        self.compiled = CompiledStep(self) if compile else None

    def call_surrogate(self, phi: dict[str, torch.Tensor], sampler: Sampler, state) -> torch.Tensor:
        return self.estimator.surrogate(self.problem.distribution(phi), self.cost, self.n_samples, sampler, state,
                                        params=phi)

    def estimates(self, c: int, sampler: Sampler, state) -> torch.Tensor:
        """The next ``c`` estimates of every run in phi: ``[S, P_phi, c]`` (eager)."""
        phi = replicate(self.phi0, c)
        surrogate = self.call_surrogate(phi, sampler, state)
        grads = gradients(surrogate, list(phi.values()))
        return gather(grads, phi.values(), c, self.n_runs)

    def run(self, n_replicates: int, seed: int = 0, *, sampler: Sampler | None = None, state=None,
            keep_estimates: bool = False, progress: bool = False, floors: bool = True) -> Measurement:
        """``n_replicates`` estimates per run, from ``seed`` (or a given ``sampler``); a stateful
        estimator starts from ``state`` (default: a fresh one) and treats the replicates as
        consecutive steps. ``floors=False`` computes the standard errors and the bias test below
        the replicate counts where they hold (for ``bench.calibrate``, which measures where)."""
        if n_replicates < 2:
            raise ConfigError("n_replicates", n_replicates, "must be an integer >= 2")
        if not 0 <= int(seed) < MAX_SEED:
            raise ConfigError("seed", seed, f"must be an integer from 0 to {MAX_SEED - 1}")
        start = time.perf_counter()
        estimator = self.estimator
        S = self.n_runs
        moments = GradientMoments(
            self.projection, S, n_replicates, self.device, shift=self.exact_phi,
            batch=batch_size(n_replicates, estimator.memory_steps(), S,
                             self.projection.n_phi + len(self.projection.rows)),
            lags=STATE_LAGS if estimator.memory_steps() > 0 else 0)
        if self.compiled is not None and moments.shift is None:  # the compiled step subtracts a known shift
            moments.shift = self.estimates(2, Sampler.seeded(seed + WARMUP_SEED_OFFSET, self.device), None).double().mean(2)
        sampler = sampler or Sampler.seeded(seed, self.device, self.sampling)
        fresh = state is None
        state = estimator.init_state() if fresh else state
        # A learning estimator trains (and freezes) its state here, from a stream of its own.
        warm_up = Sampler.seeded(seed + WARMUP_SEED_OFFSET, self.device, self.sampling)
        estimator.prepare(self._one_step, self.cost, self.n_samples, warm_up, state, fresh)
        initial_state = copy.deepcopy(state)
        C = moments.aligned_chunk(self.chunk)
        kept = []
        n_chunks = math.ceil(n_replicates / C)
        # A bar on a terminal only (disable=None: tqdm's own check), never in a log; none at all
        # unless asked (making one costs more than a small compiled run's kernels).
        bar = (tqdm(total=n_replicates, unit="rep", desc=estimator.name, disable=None, leave=False)
               if progress and n_chunks >= 4 else None)
        for lo in range(0, n_replicates, C):
            c = min(C, n_replicates - lo)
            if self.compiled is not None:
                d = self.compiled.update(c, sampler, moments, keep_estimates)
                G = None if d is None else d + moments.shift[:, :, None]
            else:
                G = self.estimates(c, sampler, state)
                moments.update(G)
            if keep_estimates:
                kept.append(self.projection.to_theta(G.transpose(1, 2).to(torch.float64)).cpu())
            if bar is not None:
                bar.update(c)
        if bar is not None:
            bar.close()
        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize()
        low = {} if floors else {"min_se": 2, "min_bias_test": 2}
        results = moments.result(self.exact_phi, dtype=self.dtype, moment_warning=self.moment_warning,
                                 sampled=self.evals_per_estimate > 0, **low)
        rows = [{"run": s, **r} for s, (run_rows, _) in enumerate(results) for r in run_rows]
        return Measurement(
            rows=rows,
            n_replicates=n_replicates,
            n_nonfinite=moments.n_nonfinite.tolist(),
            seconds=time.perf_counter() - start,
            messages=[msgs for _, msgs in results],
            estimates=torch.cat(kept, 1) if keep_estimates else None,
            initial_state=initial_state,
            moments=moments,
        )


def measure_estimates(problem: Problem, estimator: Estimator, *, n_samples: int, n_replicates: int, seed: int = 0,
                      device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                      chunk_elements: int | None = None, keep_estimates: bool = False,
                      progress: bool = False) -> Measurement:
    """Measure ``estimator`` on ``problem`` at its initial theta: statistics of ``n_replicates``
    independent estimates, each from ``n_samples`` samples, computed in batched chunks (the
    building block of :func:`bench.measure`, which returns the tidy table)."""
    start = time.perf_counter()
    harness = Harness(problem, estimator, n_samples=n_samples, device=device, dtype=dtype,
                      chunk_elements=chunk_elements)
    m = harness.run(n_replicates, seed, keep_estimates=keep_estimates, progress=progress)
    m.seconds = time.perf_counter() - start
    return m
