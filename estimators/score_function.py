"""Score-function (REINFORCE) estimators, with and without a baseline.

Source: Williams, "Simple statistical gradient-following algorithms for connectionist
reinforcement learning", Machine Learning 1992; Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo
Gradient Estimation in Machine Learning", JMLR 2020, Section 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Estimator, distribution_params, linear_surrogate, mean_over_samples
from .options import choice, number
from .registry import register


@register
class ScoreFunction(Estimator):
    r"""Score function / REINFORCE / likelihood-ratio estimator.

    .. math:: \hat g = \frac1N \sum_{i=1}^N f(x_i)\, \nabla_\phi \log q_\phi(x_i), \quad x_i \sim q_\phi

    Surrogate ``mean_i f(x_i).detach() * log_prob(x_i)``: the sample is data (no graph through
    ``x``); only ``log_prob`` carries the graph. Unbiased for any distribution with a
    differentiable density. (Williams 1992; Mohamed et al. 2020, Section 4.)
    """

    name = "score_function"
    summary = "`mean_i f(x_i) ∇log q(x_i)`: REINFORCE (Williams 1992)"

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        x = sampler.sample(dist, n_samples)
        with torch.no_grad():
            f = cost(x)
        return mean_over_samples(f * dist.log_prob(x))


BASELINES = ("ema", "loo", "optimal")


@dataclass
class EMAState:
    """Running (bias-corrected) exponential moving average of earlier steps' mean costs: the
    numerator and the weight of ``y_{r+1} = d y_r + (1-d) u_r``, one entry per independent batch
    entry (a scalar until the first step sets the shape)."""

    numerator: torch.Tensor | float = 0.0
    weight: torch.Tensor | float = 0.0

    @property
    def baseline(self) -> torch.Tensor | float:
        """The baseline the next step uses (0 before the first step)."""
        if isinstance(self.weight, float):
            return 0.0
        return torch.where(self.weight > 0, self.numerator / self.weight.clamp_min(1e-300),
                           torch.zeros_like(self.numerator))

    def copy(self) -> "EMAState":
        clone = lambda v: v.clone() if isinstance(v, torch.Tensor) else v  # noqa: E731
        return EMAState(clone(self.numerator), clone(self.weight))


def exponential_moving_average(values: torch.Tensor, decay: float, start) -> tuple[torch.Tensor, torch.Tensor]:
    r"""For the recurrence :math:`y_{r+1} = d\,y_r + (1-d)\,u_r` along dimension 0 of ``values``
    (``[C, *rest]``) with :math:`y_0` = ``start`` (broadcast to ``rest``), return
    :math:`(y_0, \dots, y_{C-1})` (the value *before* each ``u_r`` is included) and :math:`y_C`.

    Computed over the whole tensor without a Python loop over entries: within a block of length
    ``L`` (short enough that :math:`d^{-L}` fits in float64),
    :math:`y_r = d^r\,(y_0 + (1-d)\sum_{s<r} d^{-(s+1)} u_s)`.
    """
    u = values.to(torch.float64)
    y0 = torch.as_tensor(start, dtype=torch.float64, device=u.device).expand(u.shape[1:]).clone()
    if decay == 0.0:
        return torch.cat([y0[None], u[:-1]]), u[-1].clone()
    block = max(1, int(600.0 / -math.log(decay)))
    outs = []
    for lo in range(0, u.shape[0], block):
        ub = u[lo: lo + block]
        r = torch.arange(ub.shape[0] + 1, dtype=torch.float64, device=u.device)
        powers = (decay**r).reshape(-1, *([1] * (u.dim() - 1)))  # d^0 .. d^L
        scaled = (1.0 - decay) * ub / powers[1:]  # (1-d) u_s d^{-(s+1)}
        sums = torch.cat([torch.zeros_like(ub[:1]), torch.cumsum(scaled, 0)])
        y = powers * (y0 + sums)  # y_0 .. y_L
        outs.append(y[:-1])
        y0 = y[-1]
    return torch.cat(outs), y0


@register
class ScoreFunctionBaseline(Estimator):
    r"""Score function with a control-variate baseline :math:`b` that never uses the cost of the
    sample it is applied to (using it would bias the estimate).

    .. math:: \hat g = \frac1N \sum_{i=1}^N \big(f(x_i) - b_i\big)\, \nabla_\phi \log q_\phi(x_i)

    ``baseline=ema``: :math:`b` is a bias-corrected exponential moving average (``decay``) of the
    mean costs of *earlier* estimates (replicates are consecutive training steps; the first one
    has :math:`b=0`). Unbiased because :math:`b` is independent of the current samples and
    :math:`E[\nabla\log q]=0`. (Williams 1992, reinforcement baseline; Mohamed et al. 2020, Sec. 7.4.)

    ``baseline=loo``: leave-one-out, :math:`b_i = \frac1{N-1}\sum_{j\ne i} f(x_j)` (needs
    :math:`N\ge2`), unbiased because the samples are independent. (Kool, van Hoof & Welling,
    "Buy 4 REINFORCE samples, get a baseline for free!", ICLR DeepRLStructPred workshop 2019;
    Mnih & Rezende, VIMCO, ICML 2016.)

    ``baseline=optimal``: per parameter coordinate :math:`j` the variance-minimising constant
    :math:`b_j^* = E[f\, s_j^2] / E[s_j^2]` (:math:`s = \nabla_\phi \log q(x)`), estimated for sample
    :math:`i` from the other samples only, :math:`b_{ij} = \sum_{k \ne i} f_k s_{kj}^2 /
    \sum_{k \ne i} s_{kj}^2` (needs :math:`N \ge 2`), so it is independent of sample :math:`i` and
    the estimate stays unbiased. (Mohamed et al. 2020, Section 7.4.1, Eq. 7.21; Weaver & Tao, "The
    optimal reward baseline for gradient-based reinforcement learning", UAI 2001.)
    """

    name = "score_function_baseline"
    summary = ("`mean_i (f(x_i) - b_i) ∇log q(x_i)`, `b_i` never uses `f(x_i)`: an EMA of earlier estimates' "
               "costs, leave-one-out, or the per-coordinate optimal `E[f s²]/E[s²]` from the other samples")
    options_spec = {
        "baseline": choice("ema", BASELINES, "ema | loo | optimal"),
        "decay": number(0.9, minimum=0.0, below=1.0, doc="ema only: 0 <= decay < 1"),
    }

    def setup(self):
        self.min_samples = 1 if self.baseline == "ema" else 2
        self.stateful = self.baseline == "ema"

    def describe(self):
        return f"{self.name}(baseline=ema, decay={self.decay})" if self.baseline == "ema" else f"{self.name}(baseline={self.baseline})"

    def init_state(self):
        return EMAState() if self.baseline == "ema" else None

    def memory_steps(self):
        return math.ceil(1.0 / (1.0 - self.decay)) if self.baseline == "ema" else 0

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        x = sampler.sample(dist, n_samples)
        if self.baseline == "optimal":
            return self._optimal(dist, cost, x, params if params is not None else distribution_params(dist))
        with torch.no_grad():
            f = cost(x)  # [n, *batch]
            if self.baseline == "loo":
                b = (f.sum(0, keepdim=True) - f) / (n_samples - 1)
            else:
                mean_costs = mean_over_samples(f)  # [steps, *rest], in step order
                num, state.numerator = exponential_moving_average(mean_costs, self.decay, state.numerator)
                wt, state.weight = exponential_moving_average(torch.ones_like(mean_costs), self.decay, state.weight)
                b = torch.where(wt > 0, num / wt.clamp_min(1e-300), torch.zeros_like(num)).to(f.dtype)
        return mean_over_samples((f - b) * dist.log_prob(x))

    @staticmethod
    def _optimal(dist, cost, x, params):
        leaves = [p for p in params.values() if p.requires_grad]
        with torch.no_grad():
            f = cost(x)  # [n, *batch]
        log_prob = dist.log_prob(x)  # [n, *batch]
        n, batch = log_prob.shape[0], log_prob.shape[1:]
        # Per-sample scores s_i = grad log q(x_i), batched over the n samples: [n, *param]
        eye = torch.eye(n, dtype=log_prob.dtype, device=log_prob.device).reshape(n, n, *([1] * len(batch)))
        scores = torch.autograd.grad(log_prob, leaves, grad_outputs=eye.expand(n, n, *batch), is_grads_batched=True)
        pairs = []
        fs = f.reshape(n, *batch, 1)
        for s, leaf in zip(scores, leaves):
            s = s.reshape(n, *batch, -1)
            s2 = s * s
            num = (fs * s2).sum(0, keepdim=True) - fs * s2  # leave sample i out
            den = s2.sum(0, keepdim=True) - s2
            b = torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(num))
            g = ((fs - b) * s).mean(0)
            pairs.append((g.reshape(leaf.shape), leaf))
        return linear_surrogate(pairs, len(batch))
