"""The measuring harness: R independent gradient estimates, batched as a tensor dimension.

For each chunk of C replicates, phi gets a leading ``[C]`` dimension as an independent leaf (ahead
of the run dimension ``[S]``: S independent runs at their own theta, 1 for a job); the surrogates
are summed and one backward pass gives every estimate as a row of ``phi.grad``. They are mapped to
theta by the Jacobian of ``encode``, taken once per run (exact, because the cost does not depend
on theta), and reduced into :class:`bench.statistics.GradientMoments` as they come, so memory stays
bounded whatever ``n_replicates``. Random numbers come from the job's stream seeded by ``seed``
(:meth:`estimators.Sampler.seeded`: two generators, large draws split between them).

With ``compile=True`` each chunk's whole step (the surrogate, its gradient by ``torch.func.grad``
and the statistics' per-replicate work) runs through ``torch.compile``; the noise is still drawn by
the job's generator, outside the compiled code and in the same order, so the estimates are the
eager ones up to floating-point rounding. On a CPU the compiled step runs on one thread fewer than
torch's (:func:`compiled_cpu_threads`): the sampler's second thread needs the core.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from estimators import Estimator, Sampler
from estimators.options import ConfigError
from estimators.sampling import PredrawnSampler, RecordingSampler

from .problems import Problem
from .statistics import GradientMoments, Projection, batch_size

DEFAULT_CHUNK_ELEMENTS = 2**19  # on a CPU (eager within ~25 % of its best from 2^16 to 2^23, compiled up to ~1.5x faster above; bench.perf --chunk-sweep)
# On a GPU a chunk's fixed cost (~2 ms per chunk eager, measured on an H100; not yet broken down)
# dominates small chunks; larger ones are faster (bench.perf --device cuda) but take more memory.
CUDA_CHUNK_ELEMENTS = 2**21
WARMUP_SEED_OFFSET = 7_919  # a learning estimator's warm-up draws from seed + this, not the measured stream


# Guards on the identity of objects that stay fixed for a harness's life: its problem, estimator and
# cost, their classes and functions, the modules and builtins they use.
_FIXED_FOR_A_HARNESS = frozenset({"ID_MATCH", "TYPE_MATCH", "CLASS_MATCH", "MODULE_MATCH", "BUILTIN_MATCH",
                                  "CLOSURE_MATCH", "NOT_PRESENT_IN_GENERIC_DICT", "DICT_KEYS_MATCH",
                                  "DICT_CONTAINS", "DICT_NOT_CONTAINS"})


def _varying_guards(entries) -> list[bool]:
    """Which of Dynamo's guards a harness's compiled chunk step keeps: those on what can differ
    between its calls (tensors' shapes, dtypes and devices; the static ints: chunk size, phase,
    the batch layout; sequence lengths; aliasing between inputs; torch's global state), not the
    ~200 on objects fixed for the harness's life, which cost ~0.1-0.2 ms a call to check (CPU,
    measured with the profiler). Safe because each harness compiles into entries of its own
    (``isolate_recompiles``): another harness's problem or estimator never meets them."""
    return [e.guard_type == "TENSOR_MATCH" or not (e.is_global or e.guard_type in _FIXED_FOR_A_HARNESS)
            for e in entries]


def _isolated_with_varying_guards() -> dict:
    """``torch.compile``'s arguments for :func:`_varying_guards` where this torch has
    ``isolate_recompiles`` (2.13 does, 2.11 does not); otherwise none: Dynamo's full guards."""
    if "isolate_recompiles" not in inspect.signature(torch.compile).parameters:
        return {}
    return dict(isolate_recompiles=True, options={"guard_filter_fn": _varying_guards})


def compiled_cpu_threads() -> int:
    """Threads of the compiled chunk step on a CPU: one fewer than torch's, leaving a core to the
    sampler's second generator thread. With all of them, the OpenMP worker that waits, spinning,
    for the next parallel region after each step took that core: a chunk's 2^19 normals took
    1.9-3.0 ms between compiled steps against 1.0-1.5 ms alone, and whole runs on 2 cores were
    1.0-1.9x slower (1.4-1.9x at n_samples=1, R=1e6 and at n_samples=100; README, "Speed")."""
    return max(1, torch.get_num_threads() - 1)


def default_chunk_elements(device: str | torch.device) -> int:
    """The sampled elements per chunk when none is given: :data:`CUDA_CHUNK_ELEMENTS` on a GPU,
    :data:`DEFAULT_CHUNK_ELEMENTS` otherwise."""
    return CUDA_CHUNK_ELEMENTS if str(device).startswith("cuda") else DEFAULT_CHUNK_ELEMENTS


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


def flat(tensors: dict[str, torch.Tensor], leading: int = 0) -> torch.Tensor:
    """Concatenate a dict of tensors, keeping ``leading`` leading dimensions."""
    return torch.cat([v.reshape(*v.shape[:leading], -1) for v in tensors.values()], dim=leading)


def with_runs(theta: dict[str, torch.Tensor] | None, problem: Problem, device, dtype) -> dict[str, torch.Tensor]:
    """theta with a leading run dimension (one run at the problem's initial point by default)."""
    if theta is None:
        return {k: v.unsqueeze(0) for k, v in problem.init_params(device, dtype).items()}
    return {k: v.detach().to(device=device, dtype=dtype) for k, v in theta.items()}


def encode_jacobian(problem: Problem, theta: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per run, the Jacobian of ``encode``: ``[S, P_phi, P_theta]`` (runs are independent, so one
    vector-Jacobian product per phi coordinate gives row j of every run's Jacobian at once)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
    phi = flat(problem.encode(leaves), leading=1)  # [S, P_phi]
    S, P = phi.shape
    basis = torch.eye(P, dtype=phi.dtype, device=phi.device)[:, None, :].expand(P, S, P)
    try:
        rows = torch.autograd.grad(phi, list(leaves.values()), grad_outputs=basis, is_grads_batched=True,
                                   allow_unused=True)
    except RuntimeError:  # an op without a batching rule: one backward pass per coordinate
        rows = [torch.stack(g) for g in zip(*[
            torch.autograd.grad(phi, list(leaves.values()), grad_outputs=basis[j], retain_graph=True,
                                allow_unused=True) for j in range(P)])]
    rows = [torch.zeros(P, *v.shape, dtype=v.dtype, device=v.device) if g is None else g
            for g, v in zip(rows, leaves.values())]
    return torch.cat([g.reshape(P, S, -1) for g in rows], 2).transpose(0, 1).detach()


def exact_gradients(problem: Problem, theta: dict[str, torch.Tensor]):
    """For theta with a leading run dimension: phi, the Jacobian of encode (``None`` for the
    identity) and the exact gradient of the objective with respect to phi (``[S, P_phi]``;
    ``None`` when the problem has no exact value)."""
    jac = None if problem.identity_encode else encode_jacobian(problem, theta)
    with torch.no_grad():
        phi0 = {k: v.detach() for k, v in problem.encode(theta).items()}
    exact = None
    if problem.has_exact:
        leaves = {k: v.clone().requires_grad_(True) for k, v in phi0.items()}
        objective = problem.expected_cost(problem.distribution(leaves)).sum()
        grads = torch.autograd.grad(objective, list(leaves.values()), allow_unused=True)
        exact = flat({k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)},
                     leading=1).detach()
    return phi0, jac, exact


def replicate(phi0: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """phi with a leading ``[n]`` step (replicate) dimension, as independent leaves."""
    return {k: v.expand(n, *v.shape).clone().requires_grad_(True) for k, v in phi0.items()}


class Harness:
    """Measures ``estimator`` on ``problem``, at the problem's initial theta or at given thetas
    (``theta``: tensors with a leading run dimension, one independent measurement per run). The
    set-up that does not depend on the number of replicates or the seed (exact gradient, Jacobian
    of encode, applicability) is done once here; :meth:`run` makes the batched estimates and
    their statistics."""

    def __init__(self, problem: Problem, estimator: Estimator, *, n_samples: int,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 chunk_elements: int | None = None, compile: bool = False,
                 theta: dict[str, torch.Tensor] | None = None):
        self.problem, self.estimator, self.n_samples = problem, estimator, n_samples
        self.device, self.dtype = device, dtype
        theta = with_runs(theta, problem, device, dtype)
        self.n_runs = next(iter(theta.values())).shape[0]
        self.phi0, jac, self.exact_phi = exact_gradients(problem, theta)
        self.cost = problem.cost_function()
        one = problem.distribution(replicate({k: v[:1] for k, v in self.phi0.items()}, 1))
        estimator.check(one, n_samples, self.cost)
        self.evals_per_estimate = estimator.evals_per_estimate(n_samples, one)
        self.projection = Projection({k: v[0].numel() for k, v in theta.items()}, jac,
                                     problem.phi_components()).to(device)
        # Bound the elements a chunk touches: samples times what each touches, over all runs.
        per_replicate = n_samples * estimator.elements_per_sample(one, self.cost) * self.n_runs
        chunk_elements = default_chunk_elements(device) if chunk_elements is None else chunk_elements
        self.chunk = max(1, chunk_elements // per_replicate)
        self.moment_warning = problem.moment_warning()
        self._one_step = problem.distribution(replicate(self.phi0, 1))  # what an estimator prepares at
        self.compiled = None
        if compile:
            if estimator.stateful:
                raise ConfigError("compile", True, f"{estimator.describe()} keeps state between estimates; "
                                  "compile=true supports stateless estimators")
            # Dynamo caps recompilations per process (256); a job has one harness, so start afresh.
            torch.compiler.reset()
            # Each harness compiles into entries of its own (the code object is shared by all of
            # them), guarded only by what can change between its calls (see _varying_guards).
            arguments = _isolated_with_varying_guards()
            if torch.device(device).type == "cpu":
                arguments.setdefault("options", {})["cpp.threads"] = compiled_cpu_threads()
            self.compiled = torch.compile(self._chunk_step, dynamic=False, **arguments)
            self._plans: dict[int, list] = {}
            self._check_traceable()

    def _check_traceable(self) -> None:
        """Refuse, in one line naming ``compile``, an estimator whose surrogate cannot run inside
        ``torch.func.grad`` (one that takes gradients itself, e.g. with ``torch.autograd.grad``),
        by one eager step on two replicates, instead of failing in Dynamo in the middle of a job."""
        c = 2
        noises = self._predraw(c, Sampler.seeded(0, self.device))
        moments = GradientMoments(self.projection, self.n_runs, c, self.device, shift=torch.zeros(
            self.n_runs, self.projection.n_phi, dtype=torch.float64, device=self.device))
        try:
            self._chunk_step(list(self.phi0.values()), noises, moments.shift, moments, 0, c, False)
        except RuntimeError as error:
            reason = str(error).strip().split(". ")[0].rstrip(".") or type(error).__name__  # its first sentence
            raise ConfigError("compile", True, f"{self.estimator.describe()} does not run inside torch.func.grad, "
                              f"which compile=true traces ({reason}); use compile=false") from None

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

    def _predraw(self, c: int, sampler: Sampler) -> list[torch.Tensor]:
        """The noise of a chunk of ``c`` replicates, drawn from ``sampler`` in the eager order (the
        compiled step's random inputs)."""
        like = next(iter(self.phi0.values()))
        return [getattr(sampler, kind)(shape, like) for kind, shape in self._noise_plan(c)]

    def _per_tensor(self, grads, values, c: int) -> list[torch.Tensor]:
        """Per-replicate gradients ``[c, S, ...]`` of each phi tensor as a ``[S, P_k, c]`` view (zeros
        for a tensor the surrogate does not use)."""
        return [(torch.zeros_like(v) if g is None else g).reshape(c, self.n_runs, -1).permute(1, 2, 0)
                for g, v in zip(grads, values)]

    def _gather(self, grads, values, c: int) -> torch.Tensor:
        """Per-replicate gradients ``[c, S, ...]`` of every phi tensor as ``[S, P_phi, c]``."""
        S = self.n_runs
        parts = self._per_tensor(grads, values, c)
        if len(parts) == 1:
            return parts[0].contiguous()
        # Transposing copies into slices of one buffer: torch.cat of permuted views takes a slow path.
        out = torch.empty(S, sum(x.shape[1] for x in parts), c, dtype=parts[0].dtype, device=parts[0].device)
        start = 0
        for x in parts:
            out[:, start:start + x.shape[1]].copy_(x)
            start += x.shape[1]
        return out

    def _chunk_step(self, phi_values: list[torch.Tensor], noises: list[torch.Tensor], shift: torch.Tensor,
                    moments: GradientMoments, phase: int, c: int, keep: bool):
        """One chunk with the random numbers as inputs: the estimates (by ``torch.func.grad``), their
        deviations from the shift and the statistics' sums per batch of replicates: what
        ``compile=true`` compiles as a whole (``phase``, where the chunk starts in its batch, and
        ``c`` are static: they fix the batches the chunk touches; chunks are whole batches, so one
        compilation serves all but the last), so sampling's transform, the surrogate, its backward
        pass and the statistics' reductions fuse. Returns ``(d, q, sum_d2, segment sums, finite)``;
        ``d`` and ``q`` only when ``keep`` (otherwise None: the compiled code then never writes the
        per-replicate values to memory, only their sums); ``finite``: whether the sums are all
        finite (:meth:`GradientMoments.all_finite`, here fused into the same code)."""
        expanded = [v.expand(c, *v.shape) for v in phi_values]

        def total(*values):
            return self._surrogate_of_noise(list(values), noises).sum()

        grads = torch.func.grad(total, argnums=tuple(range(len(expanded))))(*expanded)
        dtype = phi_values[0].dtype
        if moments.per_coordinate and not keep:
            # theta = phi: each phi tensor's deviations and sums on their own, joined after. Inductor
            # then fuses them into one loop with an accumulator per sum; from the joined d it
            # evaluated every coordinate's expression under masks, once per sum (the kernel of a
            # 1e5-replicate chunk, n_samples=1, measured: 103 -> 69 us score function, 52 -> 35 us
            # pathwise; at n_samples=10 206 -> 182 us; unchanged at 100).
            widths = [v[0].numel() for v in phi_values]
            ds = [g - part[:, :, None].to(dtype)
                  for g, part in zip(self._per_tensor(grads, expanded, c), shift.split(widths, 1))]
            sums = moments.joined_segment_sums(ds, phase)
            return None, None, None, sums, moments.finite_flag(sums)
        d = self._gather(grads, expanded, c) - shift[:, :, None].to(dtype)
        q, squares = moments.squares_of(d)
        sums = moments.segment_sums(d, q, phase)
        sum_d2 = None if squares is None else squares.sum(2)
        finite = moments.finite_flag(sums, sum_d2)
        return (d, q, sum_d2, sums, finite) if keep else (None, None, sum_d2, sums, finite)

    def estimates(self, c: int, sampler: Sampler, state) -> torch.Tensor:
        """The next ``c`` estimates of every run in phi: ``[S, P_phi, c]`` (eager)."""
        phi = replicate(self.phi0, c)
        surrogate = self._call_surrogate(phi, sampler, state)
        grads = torch.autograd.grad(surrogate.sum(), list(phi.values()), allow_unused=True)
        return self._gather(grads, phi.values(), c)

    def _compiled_update(self, c: int, sampler: Sampler, moments: GradientMoments, keep: bool) -> torch.Tensor | None:
        """The compiled chunk step: noise drawn here by the job's generator, in the eager order.
        Returns the chunk's deviations from the shift when ``keep``. A chunk whose sums are not
        finite is taken again, uncompiled, on the same noise, so the non-finite estimates can be
        counted and left out."""
        noises = self._predraw(c, sampler)
        args = (list(self.phi0.values()), noises, moments.shift, moments, moments.phase, c)
        d, q, sum_d2, parts, finite = self.compiled(*args, keep)
        finite = bool(finite)
        if d is None and not finite:
            d, q, sum_d2, parts, _ = self._chunk_step(*args, True)
        moments.add(d, q, sum_d2, parts=parts, count=c, finite=finite)
        return d

    def run(self, n_replicates: int, seed: int = 0, *, sampler: Sampler | None = None, state=None,
            keep_estimates: bool = False, progress: bool = False, floors: bool = True) -> Measurement:
        """``n_replicates`` estimates per run, from ``seed`` (or a given ``sampler``); a stateful
        estimator starts from ``state`` (default: a fresh one) and treats the replicates as
        consecutive steps. ``floors=False`` computes the standard errors and the bias test below
        the replicate counts where they hold (for ``bench.calibrate``, which measures where)."""
        if n_replicates < 2:
            raise ConfigError("n_replicates", n_replicates, "must be an integer >= 2")
        start = time.perf_counter()
        estimator = self.estimator
        S = self.n_runs
        moments = GradientMoments(
            self.projection, S, n_replicates, self.device, shift=self.exact_phi,
            batch=batch_size(n_replicates, estimator.memory_steps(), S,
                             self.projection.n_phi + len(self.projection.rows)))
        if self.compiled is not None and moments.shift is None:  # the compiled step subtracts a known shift
            moments.shift = self.estimates(2, Sampler.seeded(seed + WARMUP_SEED_OFFSET, self.device), None).double().mean(2)
        sampler = sampler or Sampler.seeded(seed, self.device)
        fresh = state is None
        state = estimator.init_state() if fresh else state
        # A learning estimator trains (and freezes) its state here, from a stream of its own.
        warm_up = Sampler.seeded(seed + WARMUP_SEED_OFFSET, self.device)
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
                d = self._compiled_update(c, sampler, moments, keep_estimates)
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
        results = moments.result(self.exact_phi, dtype=self.dtype, moment_warning=self.moment_warning, **low)
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
