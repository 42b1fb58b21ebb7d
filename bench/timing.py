"""Wall-clock latency of one gradient estimate, as a training step would pay it.

One step: encode theta, build the distribution, compute the surrogate, backward to theta. Timed
with ``torch.utils.benchmark.Timer`` (warm-up, and accelerator synchronisation on CUDA),
separately from the batched statistics run.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.benchmark import Timer

from estimators import Estimator, Sampler

from .geometry import gradients
from .problems import Problem


@dataclass
class Latency:
    median_s: float
    iqr_s: float
    q1_s: float  # first and third quartiles of the timed blocks
    q3_s: float
    n_runs: int


def one_estimate_step(problem: Problem, estimator: Estimator, n_samples: int, device, dtype, seed: int = 0,
                      sampling: str = "iid"):
    """A closure computing one estimate (the gradient with respect to theta), with its own stream."""
    theta = {k: v.requires_grad_(True) for k, v in problem.init_params(device, dtype).items()}
    params = list(theta.values())
    sampler = Sampler.seeded(seed, device, sampling)
    state = estimator.init_state()
    cost = problem.cost_function().in_dtype(dtype)

    def step():
        phi = {k: v.unsqueeze(0) for k, v in problem.encode(theta).items()}
        surrogate = estimator.surrogate(problem.distribution(phi), cost, n_samples, sampler, state, params=phi)
        return gradients(surrogate, params)

    return step


def time_one_estimate(problem: Problem, estimator: Estimator, n_samples: int, device, dtype,
                      min_run_time: float = 0.2, seed: int = 0, sampling: str = "iid") -> Latency:
    # Collect first: the garbage a job's statistics run leaves would slow the timed steps.
    gc.collect()
    step = one_estimate_step(problem, estimator, n_samples, device, dtype, seed, sampling)
    step()  # warm-up
    m = Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time
    )
    q1, q3 = np.percentile(m.times, [25, 75])
    return Latency(median_s=m.median, iqr_s=m.iqr, q1_s=float(q1), q3_s=float(q3), n_runs=len(m.times))
