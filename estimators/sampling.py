"""Sampling from the job's random stream.

The harness owns the random numbers: a :class:`Sampler` wraps one ``torch.Generator`` and draws
standard noise (always float32, upcast to the distribution's dtype: float64 sampling is about 6x
slower) which a per-family transform turns into samples. Because ``sample`` and ``rsample`` use the
same transform, the score function and the reparameterization estimator see the same samples when
they share a seed: their comparison is paired.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import distributions as D

from .base import base_distribution


def _normal_from_noise(sampler: "Sampler", dist: D.Normal, shape: torch.Size) -> torch.Tensor:
    eps = sampler.normal(shape, dist.loc)
    return dist.loc + dist.scale * eps


# Family -> transform from the sampler's noise to a reparameterized sample of that shape.
_TRANSFORMS: dict[type, Callable[["Sampler", D.Distribution, torch.Size], torch.Tensor]] = {
    D.Normal: _normal_from_noise,
}


class Sampler:
    """Draws noise and samples from one generator (CPU or CUDA, matching the tensors)."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device | str) -> "Sampler":
        return cls(torch.Generator(device=device).manual_seed(int(seed)))

    def normal(self, shape, like: torch.Tensor) -> torch.Tensor:
        eps = torch.randn(shape, generator=self.generator, device=like.device, dtype=torch.float32)
        return eps.to(like.dtype)

    def uniform(self, shape, like: torch.Tensor) -> torch.Tensor:
        u = torch.rand(shape, generator=self.generator, device=like.device, dtype=torch.float32)
        return u.to(like.dtype)

    def _full_shape(self, dist: D.Distribution, n: int) -> torch.Size:
        return torch.Size((n,)) + dist.batch_shape + dist.event_shape

    def rsample(self, dist: D.Distribution, n: int) -> torch.Tensor:
        """``n`` reparameterized samples, shape ``[n, *batch, *event]``, with a graph to the parameters."""
        base = base_distribution(dist)
        transform = _TRANSFORMS.get(type(base))
        if transform is None:
            raise NotImplementedError(f"no noise transform for {type(base).__name__}")
        return transform(self, base, self._full_shape(dist, n))

    def sample(self, dist: D.Distribution, n: int) -> torch.Tensor:
        """``n`` samples treated as data (no graph): the same values :meth:`rsample` would give."""
        base = base_distribution(dist)
        with torch.no_grad():
            if type(base) in _TRANSFORMS:
                return self.rsample(dist, n)
            # Family without a transform: draw with torch's own sampler, seeded from our stream.
            seed = int(torch.randint(2**62, (), generator=self.generator, device=self.generator.device))
            devices = [base.mean.device] if base.mean.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return dist.sample((n,))
