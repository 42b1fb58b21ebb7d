"""Shared helpers: the repository's paths, the command line as a user runs it, finite differences."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def run_module(module: str, *args: str, cwd: Path | None = None, timeout: float = 300,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m MODULE ARGS`` from ``cwd`` with the repository importable."""
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m bench.run ARGS``."""
    return run_module("bench.run", *args, cwd=cwd, timeout=timeout)


def finite_difference(fn, theta: dict, h: float = 1e-6):
    """Central differences of the scalar ``fn(theta)`` in every coordinate of every tensor of
    ``theta`` (a dict), flattened in the dict's order (as ``bench.harness.flat``)."""
    import torch

    from bench.geometry import flat

    grads = {}
    for name, value in theta.items():
        g = torch.zeros_like(value)
        for i in range(value.numel()):
            plus = {k: v.clone() for k, v in theta.items()}
            minus = {k: v.clone() for k, v in theta.items()}
            plus[name].view(-1)[i] += h
            minus[name].view(-1)[i] -= h
            g.view(-1)[i] = (fn(plus) - fn(minus)) / (2 * h)
        grads[name] = g
    return flat(grads)


def exact_and_finite_difference(problem, theta: dict):
    """For ``theta`` with a leading run dimension of 1: the exact gradient in theta as the harness
    computes it (autograd in phi, through encode's Jacobian) and central differences of the exact
    objective, both flattened."""
    import torch

    from bench.geometry import exact_gradients

    _, jac, exact_phi = exact_gradients(problem, theta)
    exact = exact_phi if jac is None else torch.einsum("sp,spt->st", exact_phi, jac.to(exact_phi.dtype))

    def objective(t):
        with torch.no_grad():
            return float(problem.exact_objective(problem.encode(t)))

    return exact[0], finite_difference(objective, theta)

