"""The root configuration: where ``conf/`` is, its defaults, and the validation of the root keys
(each bad value raises a one-line :class:`ConfigError` naming the key and what is allowed)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch
from omegaconf import OmegaConf

from estimators.options import ConfigError, check_bool, check_choice, check_number
from estimators.sampling import SAMPLING_MODES

from .harness import MAX_SEED, default_chunk_elements
from .results import flatten

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
DEVICES = ("cpu", "cuda")


@lru_cache(maxsize=1)
def _root_defaults() -> dict[str, Any]:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "base.yaml"))
    return {k: v for k, v in cfg.items() if k not in ("defaults", "hydra")}


def root_defaults() -> dict[str, Any]:
    """The root keys of ``conf/base.yaml`` with their defaults (what a job's columns start from)."""
    return dict(_root_defaults())


def dtype_name(dtype: torch.dtype | str) -> str:
    if isinstance(dtype, str):
        return dtype
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    raise ConfigError("dtype", str(dtype), f"choose one of {', '.join(DTYPES)}")


@dataclass(frozen=True)
class JobSpec:
    n_samples: int
    n_replicates: int
    seed: int
    device: str
    dtype: torch.dtype
    chunk_elements: int | None  # None: the device's default, chosen by the harness
    timing: bool
    timing_min_run_time: float
    progress: bool
    compile: bool
    sampling: str = "iid"


def check_device(device: Any) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, with CUDA present for the latter."""
    device = str(device)
    if device.split(":")[0] not in DEVICES:
        raise ConfigError("device", device, f"choose one of {', '.join(DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", device, "CUDA is not available on this machine; use device=cpu")
    return device


def job_spec(cfg: Mapping[str, Any]) -> JobSpec:
    """Check the root keys of a job's configuration."""
    n_samples = check_number("n_samples", cfg["n_samples"], integer=True, minimum=1)
    n_replicates = check_number("n_replicates", cfg["n_replicates"], integer=True, minimum=2)
    seed = check_number("seed", cfg["seed"], integer=True, minimum=0, maximum=MAX_SEED - 1)
    chunk_elements = cfg["chunk_elements"]
    if chunk_elements is not None:  # null: the device's default (bench.harness.default_chunk_elements)
        chunk_elements = check_number("chunk_elements", chunk_elements, integer=True, minimum=1)
    check_choice("dtype", cfg["dtype"], DTYPES)
    device = check_device(cfg["device"])
    for key in ("timing", "progress", "allow_not_applicable", "compile"):
        check_bool(key, cfg.get(key, False))
    if cfg.get("resume", False) not in (True, False, "retry"):
        raise ConfigError("resume", cfg["resume"], "choose true, false or retry (true, and run again the jobs that "
                          "ended in an error)")
    min_run_time = check_number("timing_min_run_time", cfg["timing_min_run_time"], positive=True)
    sampling = check_choice("sampling", cfg.get("sampling", "iid"), SAMPLING_MODES)
    if sampling != "iid" and cfg.get("compile", False):
        raise ConfigError("compile", True, f"the compiled step draws iid noise only; use sampling=iid or compile=false")
    return JobSpec(n_samples, n_replicates, seed, device, DTYPES[cfg["dtype"]], chunk_elements,
                   cfg["timing"], float(min_run_time), bool(cfg.get("progress", True)), bool(cfg.get("compile", False)),
                   sampling)


def recorded(config: Mapping[str, Any]) -> dict[str, Any]:
    """A job's configuration as its result rows record it: flattened (:func:`bench.results.flatten`),
    with ``chunk_elements: null`` replaced by the device's default, the value the job used."""
    flat = flatten(config)
    if "chunk_elements" in flat and flat["chunk_elements"] is None:
        flat["chunk_elements"] = default_chunk_elements(str(config.get("device", "cpu")))
    return flat
