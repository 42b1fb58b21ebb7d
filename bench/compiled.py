"""``compile=true``: each chunk's whole step (the surrogate, its gradient by ``torch.func.grad`` and
the statistics' per-replicate sums) through ``torch.compile``, with the noise drawn by the job's
generator outside the compiled code and in the eager order, so the estimates are the eager ones up
to floating-point rounding.

Dynamo guards only what can change between one harness's calls, and each harness compiles into
entries of its own (``isolate_recompiles``). On a CPU the compiled step runs on one thread fewer
than torch's (:func:`compiled_cpu_threads`): the sampler's second thread needs the core. The
measurements behind these choices are in ``results/perf/README.md``.
"""

from __future__ import annotations

import inspect

import torch

from estimators import Sampler
from estimators.options import ConfigError
from estimators.sampling import PredrawnSampler, RecordingSampler

from .geometry import gather, per_tensor, replicate
from .statistics import GradientMoments

# Guards on the identity of objects that stay fixed for a harness's life: its problem, estimator and
# cost, their classes and functions, the modules and builtins they use.
_FIXED_FOR_A_HARNESS = frozenset({"ID_MATCH", "TYPE_MATCH", "CLASS_MATCH", "MODULE_MATCH", "BUILTIN_MATCH",
                                  "CLOSURE_MATCH", "NOT_PRESENT_IN_GENERIC_DICT", "DICT_KEYS_MATCH",
                                  "DICT_CONTAINS", "DICT_NOT_CONTAINS"})


def _varying_guards(entries) -> list[bool]:
    """Which of Dynamo's guards a harness's compiled chunk step keeps: those on what can differ
    between its calls (tensors' shapes, dtypes and devices; the static ints: chunk size, phase,
    the batch layout; sequence lengths; aliasing between inputs; torch's global state), not the
    ~200 on objects fixed for the harness's life, whose checking cost more than the kernel. Safe
    because each harness compiles into entries of its own: another harness never meets them."""
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
    sampler's second generator thread (the OpenMP worker spinning after each step took it)."""
    return max(1, torch.get_num_threads() - 1)


class CompiledStep:
    """The compiled chunk step of one :class:`bench.harness.Harness` (see the module docstring)."""

    def __init__(self, harness):
        estimator = harness.estimator
        if estimator.stateful:
            raise ConfigError("compile", True, f"{estimator.describe()} keeps state between estimates; "
                              "compile=true supports stateless estimators")
        self.harness = harness
        # Dynamo caps recompilations per process (256); a job has one harness, so start afresh.
        torch.compiler.reset()
        arguments = _isolated_with_varying_guards()
        if torch.device(harness.device).type == "cpu":
            arguments.setdefault("options", {})["cpp.threads"] = compiled_cpu_threads()
        self.compiled = torch.compile(self.step, dynamic=False, **arguments)
        self._plans: dict[int, list] = {}
        self._check_traceable()

    def _check_traceable(self) -> None:
        """Refuse, in one line naming ``compile``, an estimator whose surrogate cannot run inside
        ``torch.func.grad`` (one that takes gradients itself, e.g. with ``torch.autograd.grad``),
        by one eager step on two replicates, instead of failing in Dynamo in the middle of a job."""
        h, c = self.harness, 2
        noises = self.predraw(c, Sampler.seeded(0, h.device))
        moments = GradientMoments(h.projection, h.n_runs, c, h.device, shift=torch.zeros(
            h.n_runs, h.projection.n_phi, dtype=torch.float64, device=h.device))
        try:
            self.step(list(h.phi0.values()), noises, moments.shift, moments, 0, c, False)
        except RuntimeError as error:
            reason = str(error).strip().split(". ")[0].rstrip(".") or type(error).__name__  # its first sentence
            raise ConfigError("compile", True, f"{h.estimator.describe()} does not run inside torch.func.grad, "
                              f"which compile=true traces ({reason}); use compile=false") from None

    def _surrogate_of_noise(self, phi_values: list[torch.Tensor], noises: list[torch.Tensor]) -> torch.Tensor:
        """The surrogate with the random numbers as inputs (what is compiled)."""
        return self.harness.call_surrogate(dict(zip(self.harness.phi0, phi_values)), PredrawnSampler(noises), None)

    def _noise_plan(self, c: int) -> list:
        """The draws a chunk of ``c`` replicates makes, recorded once by a dry run."""
        if c not in self._plans:
            h = self.harness
            recorder = RecordingSampler(torch.Generator(device=h.device).manual_seed(0))
            h.call_surrogate(replicate(h.phi0, c), recorder, None)
            self._plans[c] = recorder.plan
        return self._plans[c]

    def predraw(self, c: int, sampler: Sampler) -> list[torch.Tensor]:
        """The noise of a chunk of ``c`` replicates, drawn from ``sampler`` in the eager order (the
        compiled step's random inputs)."""
        like = next(iter(self.harness.phi0.values()))
        return [getattr(sampler, kind)(shape, like) for kind, shape in self._noise_plan(c)]

    def step(self, phi_values: list[torch.Tensor], noises: list[torch.Tensor], shift: torch.Tensor,
             moments: GradientMoments, phase: int, c: int, keep: bool):
        """One chunk with the random numbers as inputs: the estimates (by ``torch.func.grad``), their
        deviations from the shift and the statistics' sums (``phase``, where the chunk starts in its
        batch, and ``c`` are static: chunks are whole batches, so one compilation serves all but the
        last). Returns ``(d, q, squares, sums, finite)``: the per-replicate values only when ``keep``
        (otherwise None: the compiled code then never writes them to memory, only their sums)."""
        n_runs = self.harness.n_runs
        expanded = [v.expand(c, *v.shape) for v in phi_values]

        def total(*values):
            return self._surrogate_of_noise(list(values), noises).sum()

        grads = torch.func.grad(total, argnums=tuple(range(len(expanded))))(*expanded)
        dtype = phi_values[0].dtype
        if moments.per_coordinate and not keep:
            # theta = phi: each phi tensor's sums on their own, joined after (inductor fuses them
            # into one loop; from the joined d it evaluated every coordinate under masks, per sum).
            widths = [v[0].numel() for v in phi_values]
            ds = [g - part[:, :, None].to(dtype)
                  for g, part in zip(per_tensor(grads, expanded, c, n_runs), shift.split(widths, 1))]
            sums = moments.joined_sums(ds, phase)
            return None, None, None, sums, moments.finite_flag(sums)
        d = gather(grads, expanded, c, n_runs) - shift[:, :, None].to(dtype)
        q, squares = moments.squares_of(d)
        sums = moments.sums_of(d, q, squares, phase)
        finite = moments.finite_flag(sums)
        return (d, q, squares, sums, finite) if keep else (None, None, None, sums, finite)

    def update(self, c: int, sampler: Sampler, moments: GradientMoments, keep: bool) -> torch.Tensor | None:
        """Draw a chunk's noise, run the compiled step, add its sums to ``moments``; the chunk's
        deviations from the shift when ``keep``. A chunk whose sums are not finite is taken again,
        uncompiled, on the same noise, so the non-finite estimates can be counted and left out."""
        noises = self.predraw(c, sampler)
        args = (list(self.harness.phi0.values()), noises, moments.shift, moments, moments.phase, c)
        d, q, squares, sums, finite = self.compiled(*args, keep)
        if bool(finite):
            moments.add_sums(sums)
            return d
        if d is None:
            d, q, squares, _, _ = self.step(*args, True)
        moments.add_chunk(d, q, squares)
        return d

