"""Validation of the root config keys: each bad value raises a one-line :class:`ConfigError`
naming the key and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from estimators.base import ConfigError

from .problems.base import check_number

DTYPES = {"float32": torch.float32, "float64": torch.float64}
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class JobSpec:
    n_samples: int
    n_replicates: int
    seed: int
    device: str
    dtype: torch.dtype
    chunk_elements: int
    timing: bool
    timing_min_run_time: float
    progress: bool
    compile: bool


def job_spec(cfg) -> JobSpec:
    """Check the root keys of a composed config."""
    n_samples = check_number("n_samples", cfg.n_samples, integer=True, minimum=1)
    n_replicates = check_number("n_replicates", cfg.n_replicates, integer=True, minimum=2)
    seed = check_number("seed", cfg.seed, integer=True, minimum=0)
    chunk_elements = check_number("chunk_elements", cfg.chunk_elements, integer=True, minimum=1)
    if cfg.dtype not in DTYPES:
        raise ConfigError("dtype", cfg.dtype, f"choose one of {', '.join(DTYPES)}")
    device = str(cfg.device)
    if device.split(":")[0] not in DEVICES:
        raise ConfigError("device", cfg.device, f"choose one of {', '.join(DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", cfg.device, "CUDA is not available on this machine; use device=cpu")
    if not isinstance(cfg.timing, bool):
        raise ConfigError("timing", cfg.timing, "choose true or false")
    min_run_time = check_number("timing_min_run_time", cfg.timing_min_run_time, positive=True)
    for key in ("allow_not_applicable", "resume", "compile"):
        if not isinstance(cfg.get(key, False), bool):
            raise ConfigError(key, cfg.get(key), "choose true or false")
    return JobSpec(n_samples, n_replicates, seed, device, DTYPES[cfg.dtype], chunk_elements,
                   cfg.timing, float(min_run_time), bool(cfg.get("progress", True)), bool(cfg.get("compile", False)))
