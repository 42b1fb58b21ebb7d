"""Sampling from the job's random stream.

The harness owns the random numbers: a :class:`Sampler` wraps one ``torch.Generator`` (or torch's
global one) and draws standard noise in the distribution's dtype, which its family's transform
(:mod:`estimators.families`) turns into samples; a custom distribution that defines
``sample_with(sampler, sample_shape)`` draws through it. Because ``sample`` and ``rsample`` use
the same transform, estimators that share a seed see the same samples: comparisons are paired.

Noise is drawn in the distribution's own dtype: float32 noise upcast to float64 would cap
``|eps|`` at about 5.8 and cut the tails that heavy-tailed estimators depend on.

A job's stream (:meth:`Sampler.seeded`) is two generators: a draw of at least
:data:`SPLIT_MIN_ELEMENTS` values takes its first half (in memory order) from the first and its
second half from the second, and on a CPU the two halves are drawn at once on two threads (torch's
CPU generator is a one-thread Mersenne twister, about 3 ns a value: on this benchmark's problems it
was most of the time of a compiled estimate). Smaller draws come from the first generator alone.
The values depend only on the seed and the sizes drawn, never on the threads or the machine.

Sampling modes (``Sampler.seeded(seed, device, mode)``, the job's ``sampling`` key), along the first
dimension of every draw (the samples behind one estimate); replicates stay independent, so the
standard errors hold as they are:

* ``iid`` (default): independent draws;
* ``antithetic``: the second half of the samples mirrors the first (``-eps`` for normal noise,
  ``1 - u`` for uniform noise and the Gumbel noise made from it); an odd last sample is drawn alone;
* ``rqmc``: randomised quasi-Monte Carlo: the first n points of a scrambled Sobol sequence
  (``torch.quasirandom.SobolEngine(d, scramble=True)``, seeded from the stream; ``d`` the
  noise coordinates of one sample, at most 21201), randomised for every estimate by its own random
  digital shift (XOR of the points' 30 bits), mapped to normal noise by the inverse CDF.

Every sample keeps its exact law (so a mean over samples stays unbiased), but the samples of one
estimate are no longer independent: a baseline made of the *other* samples (leave-one-out, RLOO,
GRPO's group) is then correlated with the sample it is applied to, and the bias test measures what
that costs.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import math

import torch
from torch import distributions as D

from .families import base_distribution, family_of


SAMPLING_MODES = ("iid", "antithetic", "rqmc")
SOBOL_BITS = 30  # torch's SobolEngine points are multiples of 2^-30
SOBOL_MAX_DIM = 21201
SPLIT_MIN_ELEMENTS = 2**16  # smaller draws: one generator (a hand-off to the thread costs ~0.1 ms)


def second_seed(seed: int) -> int:
    """The seed of a stream's second generator: an odd-offset affine map of the seed's low 32 bits
    (torch's CPU generator keeps only those), which never maps a seed to itself."""
    return (int(seed) % 2**32 * 0x9E3779B1 + 0x7F4A7C15) % 2**32


def _helper() -> ThreadPoolExecutor:
    """The one thread that draws second halves (created on first use, shared by every sampler)."""
    return _helper_of(os.getpid())


@functools.cache
def _helper_of(pid: int) -> ThreadPoolExecutor:
    # Keyed by process: a forked child inherits the parent's executor but not its thread.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="sampler")


def _fill_and_let_go(box: list, fill: str, generator: torch.Generator) -> None:
    """Fill the view in ``box`` in place and drop it before the caller is told it is done. A view
    left in the executor's work item could be the storage's last reference when the caller lets
    go of the tensor, which was then freed in the helper thread and made later draws page-fault
    (results/perf/README.md)."""
    view = box.pop()
    getattr(view, fill + "_")(generator=generator)
    del view


class Sampler:
    """Draws noise and samples from a generator (CPU or CUDA, matching the tensors); with
    ``generator=None``, from torch's global generator. With a ``second`` generator, draws of at
    least :data:`SPLIT_MIN_ELEMENTS` values take their second half from it (see the module
    docstring)."""

    def __init__(self, generator: torch.Generator | None = None, second: torch.Generator | None = None,
                 mode: str = "iid"):
        if mode not in SAMPLING_MODES:
            raise ValueError(f"sampling={mode!r} is not allowed: choose one of {', '.join(SAMPLING_MODES)}")
        self.generator, self.second, self.mode = generator, second, mode
        self._event_ndim = 0  # trailing dimensions of a draw that make one sample's noise vector (rqmc)

    @classmethod
    def seeded(cls, seed: int, device: torch.device | str, mode: str = "iid") -> "Sampler":
        """A job's stream: two generators from one seed."""
        return cls(torch.Generator(device=device).manual_seed(int(seed)),
                   torch.Generator(device=device).manual_seed(second_seed(seed)), mode)

    def _draw(self, fill: str, shape, like: torch.Tensor) -> torch.Tensor:
        """``shape`` values by ``Tensor.<fill>_`` (``normal`` or ``uniform``) from the stream."""
        shape = torch.Size(shape)
        if self.mode != "iid" and len(shape) > 0 and shape[0] > 1:
            return self._antithetic(fill, shape, like) if self.mode == "antithetic" else self._rqmc(fill, shape, like)
        return self._iid(fill, shape, like)

    def _antithetic(self, fill: str, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        half = shape[0] // 2
        first = self._iid(fill, torch.Size((half,)) + shape[1:], like)
        parts = [first, -first if fill == "normal" else 1 - first]
        if shape[0] % 2:
            parts.append(self._iid(fill, torch.Size((1,)) + shape[1:], like))
        return torch.cat(parts)

    def _rqmc(self, fill: str, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        n, rest = shape[0], shape[1:]
        event = rest[len(rest) - min(self._event_ndim, len(rest)):]
        d, B = math.prod(event), math.prod(rest[: len(rest) - len(event)])
        if d > SOBOL_MAX_DIM:
            raise ValueError(f"sampling='rqmc' is not allowed here: one sample has {d} noise coordinates, "
                             f"more than the {SOBOL_MAX_DIM} dimensions of torch's Sobol engine")
        device = self.generator.device if self.generator is not None else torch.device("cpu")
        seed = int(torch.randint(2**62, (), generator=self.generator, device=device))
        points = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n, dtype=torch.float64)
        ints = (points * 2**SOBOL_BITS).long().to(like.device)  # [n, d], exact
        shift = torch.randint(2**SOBOL_BITS, (B, d), generator=self.generator, device=device).to(like.device)
        u = ((ints[:, None, :] ^ shift[None]).double() + 0.5) / 2**SOBOL_BITS  # [n, B, d], in (0, 1)
        if fill == "normal":
            u = math.sqrt(2.0) * torch.erfinv(2 * u - 1)
        return u.to(like.dtype).reshape(shape)

    def _iid(self, fill: str, shape, like: torch.Tensor) -> torch.Tensor:
        out = torch.empty(shape, device=like.device, dtype=like.dtype)
        n = out.numel()
        if self.second is None or n < SPLIT_MIN_ELEMENTS:
            return getattr(out, fill + "_")(generator=self.generator)
        flat = out.view(-1)
        first, rest = flat[:(n + 1) // 2], flat[(n + 1) // 2:]
        if out.device.type == "cpu":  # torch releases the GIL while a kernel runs
            pending = _helper().submit(_fill_and_let_go, [rest], fill, self.second)
            del rest
            getattr(first, fill + "_")(generator=self.generator)
            pending.result()
        else:  # an accelerator's kernels are asynchronous already
            getattr(first, fill + "_")(generator=self.generator)
            getattr(rest, fill + "_")(generator=self.second)
        return out

    def normal(self, shape, like: torch.Tensor) -> torch.Tensor:
        return self._draw("normal", shape, like)

    def uniform(self, shape, like: torch.Tensor) -> torch.Tensor:
        """U(0, 1) in the open interval (an exact 0 is moved to the dtype's smallest positive value)."""
        return self._draw("uniform", shape, like).clamp_min_(torch.finfo(like.dtype).tiny)

    def standard_gamma(self, concentration: torch.Tensor) -> torch.Tensor:
        """Standard gamma samples of each concentration (torch's sampler, on the first generator)."""
        return torch._standard_gamma(concentration, generator=self.generator)

    def dirichlet(self, concentration: torch.Tensor) -> torch.Tensor:
        """Dirichlet samples along the last dimension (torch's sampler, on the first generator)."""
        return torch._sample_dirichlet(concentration, generator=self.generator)

    def gumbel(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.log(self.uniform(shape, like)).neg_().log_().neg_()  # -log(-log u); the uniforms kept

    @staticmethod
    def full_shape(dist: D.Distribution, n: int) -> torch.Size:
        return torch.Size((n,)) + dist.batch_shape + dist.event_shape

    def rsample(self, dist: D.Distribution, n: int) -> torch.Tensor:
        """``n`` reparameterized samples, shape ``[n, *batch, *event]``, with a graph to the parameters:
        from the job's noise where the family has a transform (paired with the other estimators),
        else by the distribution's own ``rsample`` on torch's generator seeded from the job's stream
        (reproducible, but not paired: MultivariateNormal, Laplace, LogNormal, ...)."""
        if not dist.has_rsample:
            raise NotImplementedError(f"{type(base_distribution(dist)).__name__} has no rsample")
        if hasattr(dist, "sample_with") or family_of(dist) is not None:
            return self._from_noise(dist, n)
        return self._torch_draw(dist, n, reparameterized=True)

    def _torch_draw(self, dist: D.Distribution, n: int, reparameterized: bool) -> torch.Tensor:
        """``n`` samples by torch's own sampler, on its generator seeded from this stream."""
        base = base_distribution(dist)
        seed = int(torch.randint(2**62, (), generator=self.generator,
                                 device=self.generator.device if self.generator is not None else "cpu"))
        devices = [base.mean.device] if base.mean.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return dist.rsample((n,)) if reparameterized else dist.sample((n,))

    def _from_noise(self, dist: D.Distribution, n: int) -> torch.Tensor:
        self._event_ndim = len(dist.event_shape)  # one sample's noise vector, for rqmc
        if hasattr(dist, "sample_with"):
            return dist.sample_with(self, torch.Size((n,)))
        family = family_of(dist)
        if family is None:
            raise NotImplementedError(f"no noise transform for {type(base_distribution(dist)).__name__}")
        return family.transform(self, base_distribution(dist), self.full_shape(dist, n))

    def sample(self, dist: D.Distribution, n: int) -> torch.Tensor:
        """``n`` samples treated as data (no graph): the same values :meth:`rsample` would give."""
        with torch.no_grad():
            if hasattr(dist, "sample_with") or family_of(dist) is not None:
                return self._from_noise(dist, n)
            return self._torch_draw(dist, n, reparameterized=False)  # a family without a transform


class RecordingSampler(Sampler):
    """A sampler that also records each draw: its kind, shape and values (the noise of a surrogate
    call, which :class:`PredrawnSampler` can serve again)."""

    def __init__(self, generator: torch.Generator | None, second: torch.Generator | None = None):
        super().__init__(generator, second)
        self.plan: list[tuple[str, tuple]] = []
        self.draws: list[torch.Tensor] = []

    def _record(self, kind, shape, value):
        self.plan.append((kind, tuple(shape)))
        self.draws.append(value)
        return value

    def normal(self, shape, like):
        return self._record("normal", shape, super().normal(shape, like))

    def uniform(self, shape, like):
        return self._record("uniform", shape, super().uniform(shape, like))

    def standard_gamma(self, concentration):
        return self._record("standard_gamma", concentration.shape, super().standard_gamma(concentration))

    def dirichlet(self, concentration):
        return self._record("dirichlet", concentration.shape, super().dirichlet(concentration))


class PredrawnSampler(Sampler):
    """Serves noise drawn beforehand, in order: lets ``torch.compile`` trace a surrogate with the
    random numbers as inputs (drawn outside the compiled code, from the job's generator)."""

    def __init__(self, noises):
        super().__init__(None)
        self.noises, self.next = list(noises), 0

    def _pop(self):
        value = self.noises[self.next]
        self.next += 1
        return value

    def normal(self, shape, like):
        return self._pop()

    def uniform(self, shape, like):
        return self._pop()

    def standard_gamma(self, concentration):
        return self._pop()

    def dirichlet(self, concentration):
        return self._pop()
