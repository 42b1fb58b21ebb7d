"""Estimators inside a training loop: many independent runs, batched as a tensor dimension.

theta gets a leading run dimension ``[S, ...]`` (every run starts from the problem's initial
theta); each step encodes it, takes one estimate per run from ``n_samples`` samples (the
distribution's batch is ``[1, S]``: one step, S independent runs, so a stateful estimator keeps one
state per run and carries it across steps) and makes one ``torch.optim`` step on the leaves.
Elementwise optimisers (SGD, Adam) on such leaves are exactly S independent runs. The direction
follows the problem: costs are minimised, rewards (``problem.maximize``) maximised.

Because every problem knows ``E[f]`` and its gradient at any theta, each logged step records the
exact objective, the gap to the known optimum and that step's estimate against the exact gradient;
a problem's closed-form term (``analytic_cost``, a VAE's KL) joins the objective and, by its exact
gradient, the step, and its model parameters (a VAE's decoder, one copy per run) take their exact
gradient in the same optimiser;
every ``variance_every`` steps the harness measures the estimator's variance and bias at the
current theta of every run. A run whose objective turns non-finite or whose parameters leave their
domain (``sigma <= 0`` under SGD) stops there with ``status=diverged``; the others go on.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from estimators import Estimator, Sampler
from estimators.options import ConfigError, check_bool, check_number

from .geometry import flat, gradients, with_runs
from .harness import MAX_SEED, Harness
from .problems import Problem

OPTIMIZERS = {
    "sgd": (torch.optim.SGD, ("lr", "momentum", "dampening", "weight_decay", "nesterov")),
    "adam": (torch.optim.Adam, ("lr", "betas", "eps", "weight_decay")),
}


def make_optimizer(params: list[torch.Tensor], options: dict[str, Any]) -> torch.optim.Optimizer:
    """``torch.optim`` from the ``optimizer`` group (``name`` plus the optimiser's own keywords)."""
    options = dict(options)
    name = options.pop("name", None)
    if name not in OPTIMIZERS:
        raise ConfigError("optimizer", name, f"choose one of {', '.join(OPTIMIZERS)}")
    cls, allowed = OPTIMIZERS[name]
    for key in options:
        if key not in allowed:
            raise ConfigError(f"optimizer.{key}", options[key], f"{name} takes {', '.join(allowed)}")
    check_number("optimizer.lr", options.get("lr", 1e-3), positive=True)
    for key in ("momentum", "dampening", "weight_decay", "eps"):
        if key in options:
            check_number(f"optimizer.{key}", options[key], minimum=0)
    if "nesterov" in options:
        check_bool("optimizer.nesterov", options["nesterov"])
    if "betas" in options:
        betas = list(options["betas"])
        if len(betas) != 2 or not all(0 <= check_number("optimizer.betas", b) < 1 for b in betas):
            raise ConfigError("optimizer.betas", betas, "must be two numbers in [0, 1)")
        options["betas"] = tuple(betas)
    if name == "adam":
        options.setdefault("foreach", True)  # one kernel per operation over all tensors (same numbers)
    try:
        return cls(params, **options)
    except ValueError as e:  # torch's own checks (e.g. nesterov without momentum)
        raise ConfigError(f"optimizer.{name}", options, str(e)) from None


@dataclass(frozen=True)
class TrainSpec:
    steps: int
    n_seeds: int
    log_every: int
    variance_every: int
    variance_replicates: int


def train_spec(cfg) -> TrainSpec:
    steps = check_number("steps", cfg["steps"], integer=True, minimum=1)
    n_seeds = check_number("n_seeds", cfg["n_seeds"], integer=True, minimum=1)
    log_every = check_number("log_every", cfg["log_every"], integer=True, minimum=1)
    variance_every = check_number("variance_every", cfg["variance_every"], integer=True, minimum=0)
    variance_replicates = check_number("variance_replicates", cfg["variance_replicates"], integer=True, minimum=2)
    return TrainSpec(steps, n_seeds, log_every, variance_every, variance_replicates)


@dataclass
class Training:
    curves: pd.DataFrame  # one row per (run, logged step)
    variance: pd.DataFrame  # one row per (run, measured step, parameter)
    summary: pd.DataFrame  # one row per run: final status, objective, gap, steps
    seconds: float  # wall-clock of the training steps (logging and measurements excluded)


def _per_run(values: dict[str, torch.Tensor]) -> torch.Tensor:
    return flat(values, leading=1).double()


def train(problem: Problem, estimator: Estimator, optimizer: dict[str, Any], *, n_samples: int, steps: int,
          n_seeds: int = 1, log_every: int = 1, variance_every: int = 0, variance_replicates: int = 10_000,
          seed: int = 0, device: str = "cpu", dtype: torch.dtype = torch.float32,
          chunk_elements: int | None = None, sampler: Sampler | None = None, sampling: str = "iid") -> Training:
    """Train ``n_seeds`` independent runs for ``steps`` steps; see the module docstring. The
    estimates' noise comes from ``sampler`` (default: seeded with ``seed``)."""
    theta = {k: v.expand(n_seeds, *v.shape[1:]).clone().requires_grad_(True)
             for k, v in with_runs(None, problem, device, dtype).items()}
    params = list(theta.values())
    model = {k: v.detach().to(device, dtype).expand(n_seeds, *v.shape[1:]).clone().requires_grad_(True)
             for k, v in problem.model_parameters().items()}
    if model:  # the cost's own parameters (a decoder), one copy per run, on a copy of the problem
        problem = copy.copy(problem)
        problem.set_model_parameters(model)
    trained = params + list(model.values())  # every leaf the optimiser steps
    opt = make_optimizer(trained, optimizer)
    sign = -1.0 if problem.maximize else 1.0
    with torch.no_grad():
        one = problem.distribution({k: v[:1].unsqueeze(0) for k, v in problem.encode(theta).items()})
    cost = problem.cost_function().checked(one)
    estimator.check(one, n_samples, cost)
    evals_per_step = estimator.evals_per_estimate(n_samples, one)
    optimum = problem.optimum()
    sampler = sampler or Sampler.seeded(seed, device, sampling)
    state = estimator.init_state()
    alive = torch.ones(n_seeds, dtype=torch.bool, device=device)
    stopped_at = np.full(n_seeds, -1)
    curve_parts, variance_parts = [], []
    elapsed = 0.0

    def full_objective(dist):
        """E[cost] plus the problem's closed-form term (a VAE's KL), per batch entry."""
        extra = problem.analytic_cost(dist)
        return problem.expected_cost(dist) + (0.0 if extra is None else extra)

    def objective_and_gradient():
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in theta.items()}
        values = full_objective(problem.distribution(problem.encode(leaves)))
        grads = torch.autograd.grad(values.sum(), list(leaves.values()), allow_unused=True)
        exact = _per_run({k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)})
        return values.detach().double().reshape(n_seeds, -1).sum(1), exact  # summed over a problem's own batch (prompts)

    def log(step: int, estimate: torch.Tensor | None, exact: torch.Tensor | None):
        """A row per run for step ``step``: the exact objective at theta after the step, and the
        step's estimate against the exact gradient at the theta it was taken at."""
        objective, _ = objective_and_gradient()
        stop(~torch.isfinite(objective), step)
        gap = (objective - optimum) * sign if optimum is not None else torch.full_like(objective, math.nan)
        if estimate is not None:
            error = ((estimate - exact) ** 2).sum(1)
            cosine = (estimate * exact).sum(1) / (estimate.norm(dim=1) * exact.norm(dim=1)).clamp_min(1e-300)
        else:
            error = cosine = torch.full_like(objective, math.nan)
        just_stopped = stopped_at == step
        show = alive.cpu().numpy() | just_stopped
        with torch.no_grad():  # the problem's exact functionals at theta (e.g. the mean completion length)
            metrics = problem.curve_metrics_at(theta)
        curve_parts.append(pd.DataFrame({
            "run": np.arange(n_seeds)[show], "step": step, "objective": objective.cpu().numpy()[show],
            "gap": gap.cpu().numpy()[show], "grad_sq_error": error.cpu().numpy()[show],
            "grad_cosine": cosine.cpu().numpy()[show], "evals": step * evals_per_step, "time_s": elapsed,
            "status": np.where(just_stopped, "diverged", "ok")[show],
            **{f"metric.{k}": v.double().reshape(n_seeds, -1).mean(1).cpu().numpy()[show] for k, v in metrics.items()}}))

    def stop(mask: torch.Tensor, step: int):
        newly = mask & alive
        if bool(newly.any()):
            stopped_at[newly.cpu().numpy()] = step
            alive.logical_and_(~newly)

    def measure_variance(step: int):
        harness = Harness(problem, estimator, n_samples=n_samples, device=device, dtype=dtype,
                          chunk_elements=chunk_elements, theta={k: v.detach() for k, v in theta.items()},
                          sampling=sampling)
        m = harness.run(variance_replicates, seed=(seed + 1 + step) % MAX_SEED, state=copy.deepcopy(state))
        rows = pd.DataFrame(m.rows)
        rows["status"] = [m.status(run) for run in rows["run"]]
        rows["message"] = [m.message(run) for run in rows["run"]]
        rows = rows[rows["run"].isin(np.flatnonzero(alive.cpu().numpy()))]
        variance_parts.append(rows.assign(step=step, evals=step * evals_per_step, time_s=elapsed))

    log(0, None, None)
    if variance_every:
        measure_variance(0)
    for step in range(1, steps + 1):
        logged = step % log_every == 0 or step == steps
        exact = objective_and_gradient()[1] if logged else None  # at the theta this step estimates at
        start = time.perf_counter()
        with torch.no_grad():
            before = [p.clone() for p in trained]  # a run that leaves its domain goes back to these
        phi = {k: v.unsqueeze(0) for k, v in problem.encode(theta).items()}  # [1, S, ...]: one step per run
        dist = problem.distribution(phi)
        surrogate = estimator.surrogate(dist, cost, n_samples, sampler, state, params=phi)
        extra = problem.analytic_cost(dist)
        if extra is not None:  # its exact gradient joins the estimate
            surrogate = surrogate.sum() + extra.sum()
        grads = gradients(surrogate, params)
        if model:  # the cost's parameters by their exact gradient at the theta this step estimates at
            grads += torch.autograd.grad(problem.expected_cost(problem.distribution(
                {k: v.detach() for k, v in phi.items()})).sum(), list(model.values()))
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(trained, grads)]
        everyone = bool(alive.all())
        for p, g in zip(trained, grads):
            p.grad = sign * g if everyone else sign * g * alive.reshape(-1, *[1] * (g.dim() - 1))
        opt.step()
        with torch.no_grad():
            stop(~problem.in_domain(theta), step)  # non-finite parameters included
            if not bool(alive.all()):  # a stopped run keeps its last valid parameters
                frozen = ~alive
                for p, b in zip(trained, before):
                    p[frozen] = b[frozen]
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
        if logged or bool((stopped_at == step).any()):
            log(step, _per_run(dict(zip(theta, grads))) if logged else None, exact)
        if variance_every and (step % variance_every == 0 or step == steps) and bool(alive.any()):
            measure_variance(step)
    curves = pd.concat(curve_parts, ignore_index=True)
    last = curves.sort_values("step").groupby("run").tail(1).set_index("run")
    summary = pd.DataFrame({
        "run": np.arange(n_seeds),
        "status": np.where(stopped_at >= 0, "diverged", "ok"),
        "message": [f"diverged at step {s}: the objective became non-finite or the parameters left their "
                    f"domain" if s >= 0 else "" for s in stopped_at],
        "diverged_step": np.where(stopped_at >= 0, stopped_at, np.nan),
        "final_step": last["step"].reindex(range(n_seeds)).to_numpy(),
        "final_objective": last["objective"].reindex(range(n_seeds)).to_numpy(),
        "final_gap": last["gap"].reindex(range(n_seeds)).to_numpy(),
        "steps_per_s": steps * n_seeds / elapsed if elapsed > 0 else math.nan,
        "train_s": elapsed,
    })
    variance = pd.concat(variance_parts, ignore_index=True) if variance_parts else pd.DataFrame()
    return Training(curves, variance, summary, elapsed)
