"""The geometry a measurement works in: theta with a leading run dimension, phi = encode(theta) with
leading replicate dimensions, the Jacobian of ``encode`` that maps phi-space gradients to theta, the
exact gradient, and the reshaping of per-replicate gradients into ``[runs, P_phi, replicates]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from estimators.base import ContractError

if TYPE_CHECKING:  # a problem module may import this one (through bench.exact_variance) while bench.problems loads
    from .problems import Problem


def flat(tensors: dict[str, torch.Tensor], leading: int = 0) -> torch.Tensor:
    """Concatenate a dict of tensors, keeping ``leading`` leading dimensions."""
    return torch.cat([v.reshape(*v.shape[:leading], -1) for v in tensors.values()], dim=leading)


def with_runs(theta: dict[str, torch.Tensor] | None, problem: Problem, device, dtype) -> dict[str, torch.Tensor]:
    """theta with a leading run dimension (one run at the problem's initial point by default)."""
    if theta is None:
        return {k: v.unsqueeze(0) for k, v in problem.init_params(device, dtype).items()}
    return {k: v.detach().to(device=device, dtype=dtype) for k, v in theta.items()}


def replicate(phi0: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """phi with a leading ``[n]`` step (replicate) dimension, as independent leaves."""
    return {k: v.expand(n, *v.shape).clone().requires_grad_(True) for k, v in phi0.items()}


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
        dist = problem.distribution(leaves)
        expected = problem.expected_cost(dist)
        if not isinstance(expected, torch.Tensor) or expected.shape != dist.batch_shape:
            got = tuple(expected.shape) if isinstance(expected, torch.Tensor) else type(expected).__name__
            raise ContractError(f"problem {problem.name}'s expected_cost returned {got}; it must return one value per "
                                f"entry of the distribution's batch, shape {tuple(dist.batch_shape)}")
        if not expected.requires_grad:
            raise ContractError(f"problem {problem.name}'s expected_cost is not differentiable in the distribution's "
                                "parameters (it has no graph to them): the exact gradient is its autograd")
        objective = expected.sum()
        grads = torch.autograd.grad(objective, list(leaves.values()), allow_unused=True)
        exact = flat({k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)},
                     leading=1).detach()
    return phi0, jac, exact


def gradients(surrogate: torch.Tensor, leaves: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """The gradient of the summed surrogate with respect to each leaf (``None`` where it does not
    depend on it, and for every leaf when it depends on none: a constant cost's estimate is 0)."""
    if not surrogate.requires_grad:
        return [None] * len(leaves)
    return list(torch.autograd.grad(surrogate.sum(), leaves, allow_unused=True))


def per_tensor(grads, values, c: int, n_runs: int) -> list[torch.Tensor]:
    """Per-replicate gradients ``[c, S, ...]`` of each phi tensor as a ``[S, P_k, c]`` view (zeros
    for a tensor the surrogate does not use)."""
    return [(torch.zeros_like(v) if g is None else g).reshape(c, n_runs, -1).permute(1, 2, 0)
            for g, v in zip(grads, values)]


def gather(grads, values, c: int, n_runs: int) -> torch.Tensor:
    """Per-replicate gradients ``[c, S, ...]`` of every phi tensor as ``[S, P_phi, c]``."""
    parts = per_tensor(grads, values, c, n_runs)
    if len(parts) == 1:
        return parts[0].contiguous()
    # Transposing copies into slices of one buffer: torch.cat of permuted views takes a slow path.
    out = torch.empty(n_runs, sum(x.shape[1] for x in parts), c, dtype=parts[0].dtype, device=parts[0].device)
    start = 0
    for x in parts:
        out[:, start:start + x.shape[1]].copy_(x)
        start += x.shape[1]
    return out
