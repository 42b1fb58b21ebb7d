"""RELAX: REBAR's structure with a learned control variate, for Bernoulli variables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .base import Estimator, base_distribution, linear_surrogate, mean_over_samples
from .options import integer, number
from .registry import register


@dataclass
class RelaxState:
    """The control variate's parameters psi (one set per independent batch entry, e.g. per run),
    their Adam optimiser, and whether psi is still learning (the harness freezes it after its
    warm-up, so the measured estimates are independent)."""

    psi: list[torch.Tensor] = field(default_factory=list)
    optimizer: torch.optim.Optimizer | None = None
    learning: bool = True
    updates: int = 0


@register
class RELAX(Estimator):
    r"""RELAX (unbiased for any control variate), for Bernoulli variables.

    With :math:`z = \alpha + \mathrm{logit}(u)`, :math:`b = 1[z > 0]`, the conditional sample
    :math:`\tilde z \sim p(z \mid b)` (reparameterized as in REBAR, see :class:`estimators.bernoulli.REBAR`)
    and a control variate :math:`c_\psi(\zeta) = \eta\, f(\sigma(\zeta/\lambda)) + r_\psi(\sigma(\zeta/\lambda))`
    (REBAR's plus a small network :math:`r_\psi`: one tanh layer of ``hidden`` units):

    .. math:: \hat g = \big[f(b) - c_\psi(\tilde z)\big]\nabla_\alpha\log p(b)
              + \nabla_\alpha c_\psi(z) - \nabla_\alpha c_\psi(\tilde z)

    psi is trained by Adam (``lr``) on the estimate's squared norm, an unbiased estimate of
    :math:`\partial\,\mathrm{Var}[\hat g]/\partial\psi` because :math:`E[\hat g]` does not depend on psi
    (the paper's variance objective): one step per call, after the call's estimates are formed, so
    each estimate uses a psi trained on earlier samples only. psi is state: in training it is
    carried (and trained) across steps, one psi per run; at a fixed theta the harness first trains
    it for ``warmup`` calls of 64 replicates each (noise from its own stream), then freezes it, so
    the measured replicates are independent. (Grathwohl, Choi, Wu, Roeder & Duvenaud,
    "Backpropagation through the Void: Optimizing control variates for black-box gradient
    estimation", ICLR 2018, Algorithm 2 and Section 3.3.)
    """

    name = "relax"
    summary = "REBAR with a learned control variate `c_ψ(z) = η f(σ_λ(z)) + r_ψ(σ_λ(z))`, ψ trained on the estimate's squared norm (Grathwohl et al. 2018)"
    families = frozenset({"bernoulli"})
    evals_per_sample = 3
    stateful = True
    options_spec = {
        "temperature": number(0.5, positive=True, doc="lambda of the relaxation"),
        "eta": number(1.0, doc="scale of the REBAR part of the control variate"),
        "hidden": integer(16, minimum=1, doc="units of the control variate's network"),
        "lr": number(0.01, positive=True, doc="Adam's learning rate for psi"),
        "warmup": integer(200, minimum=0, doc="psi updates at a fixed theta before measuring"),
        "init_seed": integer(0, minimum=0),
    }
    WARMUP_REPLICATES = 64

    def init_state(self):
        return RelaxState()

    def memory_steps(self):
        return 0  # psi is frozen while the harness measures (see warmup)

    def _network(self, state: RelaxState, rest: torch.Size, width: int, like: torch.Tensor) -> list[torch.Tensor]:
        """psi, created at the first call with one copy per entry of ``rest`` (runs, ...)."""
        if not state.psi:
            g = torch.Generator().manual_seed(self.init_seed)
            shapes = [(width, self.hidden), (self.hidden,), (self.hidden,), ()]
            scale = [1 / math.sqrt(width), 0.0, 1 / math.sqrt(self.hidden), 0.0]
            state.psi = [(torch.randn(s, generator=g, dtype=torch.float64) * c).to(like)
                         .expand(torch.Size(rest) + s).clone().requires_grad_(True) for s, c in zip(shapes, scale)]
            state.optimizer = torch.optim.Adam(state.psi, lr=self.lr)
        return state.psi

    @staticmethod
    def _network_value(relaxed, psi):
        """``r_psi(relaxed)`` per sample: ``[n, *batch]`` (psi: ``[*rest, width, hidden]`` ...)."""
        w1, b1, w2, b2 = psi
        h = torch.tanh((relaxed.unsqueeze(-2) @ w1).squeeze(-2) + b1)
        return (h * w2).sum(-1) + b2

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        alpha = base_distribution(dist).logits  # [*batch, width]
        width = alpha.shape[-1]
        rest = dist.batch_shape[1:]
        psi = self._network(state, rest, width, alpha)
        shape = torch.Size((n_samples,)) + dist.batch_shape + dist.event_shape
        u, v = sampler.uniform(shape, alpha), sampler.uniform(shape, alpha)
        z = alpha + torch.logit(u)
        b = (z > 0).to(alpha.dtype).detach()
        log_p, log_1mp = F.logsigmoid(alpha), F.logsigmoid(-alpha)
        log_v1, log_1mv1 = torch.log1p(-torch.exp(log_p) * (1 - v)), log_p + torch.log1p(-v)
        log_v0, log_1mv0 = torch.log(v) + log_1mp, torch.log1p(-v * torch.exp(log_1mp))
        z_cond = alpha + torch.where(b > 0, log_v1 - log_1mv1, log_v0 - log_1mv0)
        with torch.no_grad():
            f_b = cost(b)
        learning = state.learning and torch.is_grad_enabled()
        weights = psi if learning else [p.detach() for p in psi]
        relaxed, relaxed_cond = torch.sigmoid(z / self.temperature), torch.sigmoid(z_cond / self.temperature)
        f_relaxed, f_cond = cost(relaxed), cost(relaxed_cond)
        c_z = self.eta * f_relaxed + self._network_value(relaxed, weights)
        c_cond = self.eta * f_cond + self._network_value(relaxed_cond, weights)
        # The learning signal's control variate: no path to alpha, but one to psi.
        signal = f_b - self.eta * f_cond.detach() - self._network_value(relaxed_cond.detach(), weights)
        surrogate = mean_over_samples(signal * dist.log_prob(b) + c_z - c_cond)
        if not learning:
            return surrogate
        # The estimate itself (with a graph to psi), then one Adam step on its squared norm.
        (g,) = torch.autograd.grad(surrogate.sum(), alpha, create_graph=True)
        state.optimizer.zero_grad()
        loss = (g * g).reshape(g.shape[0], *rest, -1).sum(-1).mean(0).sum()  # per run: mean over steps
        psi_grads = torch.autograd.grad(loss, psi)
        for p, pg in zip(psi, psi_grads):
            p.grad = pg
        state.optimizer.step()
        state.updates += 1
        return linear_surrogate([(g.detach(), alpha)], len(dist.batch_shape))

    def prepare(self, dist, cost, n_samples, sampler, state, fresh: bool) -> None:
        """At a fixed theta: train a fresh psi for ``warmup`` calls of ``WARMUP_REPLICATES``
        replicates at this distribution, then freeze psi for the measurement (a given, already
        trained state is frozen as it is)."""
        if fresh:
            self._warm_up(dist, cost, n_samples, sampler, state)
        state.learning = False

    def _warm_up(self, dist, cost, n_samples, sampler, state) -> None:
        leaf = base_distribution(dist).logits
        for _ in range(self.warmup):
            alpha = leaf.detach().expand(self.WARMUP_REPLICATES, *leaf.shape[1:]).clone().requires_grad_(True)
            one = torch.distributions.Independent(torch.distributions.Bernoulli(logits=alpha, validate_args=False),
                                                  len(dist.event_shape), validate_args=False)
            self.surrogate(one, cost, n_samples, sampler, state)
