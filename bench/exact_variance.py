r"""Exact variances of the estimators, by numerical integration (Gaussian problems) and by
enumeration (discrete problems), used by the tests, the jobs' ``exact_variance`` column, the
sweeps' exact curves (``exact_curves.csv``, drawn by the report) and ``bench.calibrate``.

Formulas are registered by class, as ``torch.distributions.kl.register_kl`` registers KL
divergences: ``@register_exact_variance(EstimatorClass, ProblemClass)`` on a function
``(problem, estimator, n_samples, n_replicates) -> {param: variance, ..., "total": ...}`` (or
``None`` where it does not hold for those options); :func:`exact_variance` uses the most specific
registration by method resolution order (the estimator's class first, then the problem's), so a new
subclass of ``GaussianProblem`` has every Gaussian formula with no line written for it. A problem
or estimator module registers its own formulas beside its class.

Every quantity is an expectation over one coordinate :math:`x = \mu + \sigma\epsilon`,
:math:`\epsilon \sim N(0,1)`, of smooth functions of :math:`\epsilon`. The default rule is the
trapezoid rule on :math:`2^{15}+1` points over :math:`[-14, 14]`, spectrally accurate for smooth
integrands with Gaussian tails: absolute errors below 1e-16 on the closed-form objectives for
``k`` up to 50 and ``sigma`` up to 2, where Gauss-Hermite with 160 nodes fails (a narrow
``exp(-k x^2)`` or a fast ``cos(k x)``: errors of 1e-2 and worse). The cost
is :math:`f = \sum_j f_1(x_j)` and all coordinates share :math:`\mu, \sigma`, so one coordinate's
moments give every coordinate's, and a parameter tensor's variance is ``dim`` times one
coordinate's. With the score :math:`s` of one coordinate (:math:`\epsilon/\sigma` for the mean,
:math:`(\epsilon^2-1)/\sigma` for the scale) and :math:`F_1 = E f`, :math:`F_2 = E f^2`,
:math:`A = E[f^2 s^2]`, :math:`B = E[f s^2]`, :math:`C = E[s^2]`, :math:`g = E[f s]`:

* score function, constant baseline :math:`b` (0 for none): :math:`(A - 2bB + b^2C - g^2)/N`;
* baseline independent of the samples with mean :math:`\bar b` and second moment :math:`\overline{b^2}`
  (EMA over earlier replicates): :math:`(A - 2\bar bB + \overline{b^2}C - g^2)/N`;
* leave-one-out: :math:`(A-g^2)/N + [F_2C + g^2 + (N-2)CF_1^2]/(N(N-1)) - 2BF_1/N`;
* reparameterization: :math:`\mathrm{Var}[f_1'(x)]/N` (mean), :math:`\mathrm{Var}[f_1'(x)\epsilon]/N` (scale).

The derivations are in ``tests/test_exact_variance.py`` beside the hand-derived closed forms for the
quadratic cost that check this module.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np
import torch
from torch import distributions as D

from estimators import Estimator
from estimators.exact import Exact
from estimators.bernoulli import ARM, DisARM
from estimators.measure_valued import MeasureValued
from estimators.reparameterization import Reparameterization
from estimators.score_function import ScoreFunction, ScoreFunctionBaseline

from .geometry import encode_jacobian, with_runs
from .problems.base import Problem
from .problems.discrete import BernoulliProblem, CategoricalBandit
from .problems.gaussian import GaussianProblem, GaussianQuadratic
from .problems.policy import PolicyMLP

Formula = Callable[[Problem, Estimator, int, int], "dict[str, float] | None"]
_FORMULAS: dict[tuple[type, type], Formula] = {}


def register_exact_variance(estimator_class: type, problem_class: type):
    """Register ``fn(problem, estimator, n_samples, n_replicates)`` as the exact variance of
    ``estimator_class`` (and its subclasses) on ``problem_class`` (and its subclasses)."""
    def decorator(fn: Formula) -> Formula:
        key = (estimator_class, problem_class)
        if key in _FORMULAS:
            raise ValueError(f"an exact variance of {estimator_class.__name__} on {problem_class.__name__} is "
                             "registered twice")
        _FORMULAS[key] = fn
        return fn
    return decorator


def registered_formulas() -> dict[tuple[type, type], Formula]:
    """Every registration, ``(estimator class, problem class) -> formula``."""
    return dict(_FORMULAS)


def find_formula(estimator: Estimator, problem: Problem) -> tuple[tuple[type, type], Formula] | None:
    """The most specific registration for these instances: the smallest position of its estimator
    class in the estimator's MRO, then of its problem class in the problem's; ``None`` if none."""
    e_mro, p_mro = type(estimator).__mro__, type(problem).__mro__
    matches = [(e_mro.index(e), p_mro.index(p), (e, p)) for e, p in _FORMULAS if e in e_mro and p in p_mro]
    if not matches:
        return None
    *_, key = min(matches, key=lambda m: m[:2])
    return key, _FORMULAS[key]


Rule = tuple[torch.Tensor, torch.Tensor]


def normal_rule(n_points: int = 2**15 + 1, half_width: float = 14.0) -> Rule:
    """Nodes and weights with ``E[h(eps)] ~= sum w_i h(x_i)`` for ``eps ~ N(0, 1)`` (float64):
    the trapezoid rule on a uniform grid."""
    x = torch.linspace(-half_width, half_width, n_points, dtype=torch.float64)
    w = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) * (x[1] - x[0])
    return x, w


def gauss_hermite(n_nodes: int) -> Rule:
    """Gauss-Hermite nodes and weights for ``eps ~ N(0, 1)``: exact for polynomials of degree
    below ``2 n_nodes``; used by the tests to enumerate small product rules."""
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    return torch.from_numpy(x), torch.from_numpy(w / math.sqrt(2 * math.pi))


class GaussianMoments:
    """The moments of a Gaussian problem that the variance formulas need, per parameter tensor
    (sums over its ``dim`` coordinates, which share mu and sigma)."""

    def __init__(self, problem: GaussianProblem, rule: Rule | None = None):
        eps, w = rule if rule is not None else normal_rule()
        mu, sigma, d = problem.mu, problem.sigma, problem.dim
        x = (mu + sigma * eps).requires_grad_(True)
        f1 = problem.f1(x)
        (df1,) = torch.autograd.grad(f1.sum(), x)
        f1 = f1.detach()
        E = lambda h: float((w * h).sum())  # noqa: E731
        m1, m2 = E(f1), E(f1 * f1)
        rest1 = (d - 1) * m1  # E of the other coordinates' sum, and its second moment
        rest2 = (d - 1) * (m2 - m1 * m1) + rest1**2
        self.F1 = d * m1
        self.F2 = d * (m2 - m1 * m1) + self.F1**2
        self.score = {}
        for name, s in (("mu", eps / sigma), ("sigma", (eps * eps - 1) / sigma)):
            C = E(s * s)
            B1, A1 = E(f1 * s * s), E(f1 * f1 * s * s)
            self.score[name] = dict(g2=d * E(f1 * s) ** 2, C=d * C, B=d * (B1 + rest1 * C),
                                    A=d * (A1 + 2 * rest1 * B1 + rest2 * C))
        self.pathwise = {
            "mu": d * (E(df1 * df1) - E(df1) ** 2),
            "sigma": d * (E(df1 * df1 * eps * eps) - E(df1 * eps) ** 2),
        }


MAX_ENUMERATED_BITS = 12  # EnumeratedMoments forms one score per outcome: 2^12 of them at most


class EnumeratedMoments:
    """The same moments for a discrete problem whose theta is phi, by enumerating every outcome
    of its distribution: ``A = E[f^2 |s|^2]``, ``B = E[f |s|^2]``, ``C = E[|s|^2]``, ``g2 = |E[f s]|^2``
    per parameter tensor, with the score ``s = grad_theta log q(x)``."""

    def __init__(self, problem):
        theta = {k: v.unsqueeze(0).requires_grad_(True) for k, v in problem.init_params("cpu", torch.float64).items()}
        dist = problem.distribution(theta)
        outcomes = enumerate_support(dist)  # [M, *event]
        log_q = dist.log_prob(outcomes.unsqueeze(1))[:, 0]  # [M]
        q = log_q.detach().exp()
        f = problem.cost(outcomes).detach()
        M = len(outcomes)
        scores = torch.autograd.grad(log_q, list(theta.values()), grad_outputs=torch.eye(M, dtype=q.dtype),
                                     is_grads_batched=True)
        self.F1, self.F2 = float((q * f).sum()), float((q * f * f).sum())
        self.score = {}
        for name, s in zip(theta, scores):
            s2 = (s.reshape(M, -1) ** 2).sum(1)
            g = (q[:, None] * f[:, None] * s.reshape(M, -1)).sum(0)
            self.score[name] = dict(A=float((q * f * f * s2).sum()), B=float((q * f * s2).sum()),
                                    C=float((q * s2).sum()), g2=float((g * g).sum()))


def _with_total(per_tensor: dict[str, float]) -> dict[str, float]:
    return {**per_tensor, "total": sum(per_tensor.values())}


def ema_baseline_moments(F1: float, var_mean_cost: float, decay: float, n_replicates: int) -> tuple[float, float]:
    r"""Mean over replicates :math:`r = 0..R-1` of :math:`E[b_r]` and :math:`E[b_r^2]` for the
    bias-corrected EMA baseline (:math:`b_0 = 0`; for :math:`r \ge 1`, :math:`b_r` is a weighted
    mean of the earlier replicates' mean costs with weights :math:`\propto d^{r-1-s}`, so
    :math:`\mathrm{Var}\,b_r = \mathrm{Var}(\bar f)\,(1-d)(1+d^r)/((1+d)(1-d^r))`)."""
    R = n_replicates
    r = np.arange(1, R, dtype=np.float64)
    if decay == 0.0:
        rho = np.ones_like(r)
    else:
        dr = decay**r
        rho = (1 - decay) * (1 + dr) / ((1 + decay) * (1 - dr))
    mean_b = F1 * (R - 1) / R
    mean_b2 = float((F1 * F1 + var_mean_cost * rho).sum()) / R
    return mean_b, mean_b2


def score_moments(problem, rule: Rule | None = None):
    """The score-function moments of a Gaussian problem (quadrature) or an enumerable discrete one."""
    if isinstance(problem, GaussianProblem):
        return GaussianMoments(problem, rule)
    return EnumeratedMoments(problem)


def score_function_variance(problem, n_samples: int, baseline: str | None = None,
                            decay: float = 0.9, n_replicates: int | None = None,
                            constant: float = 0.0, rule: Rule | None = None) -> dict[str, float]:
    """Exact trace-variance of one estimate per parameter tensor (and ``total``), on a Gaussian
    problem or a discrete one with theta = phi (by enumeration).

    ``baseline``: ``None`` or ``"constant"`` (with ``constant``), ``"loo"``, or ``"ema"`` (with
    ``decay`` and ``n_replicates``: the average over the replicates the harness runs).
    """
    m = score_moments(problem, rule)
    N = n_samples
    out = {}
    for name, s in m.score.items():
        A, B, C, g2 = s["A"], s["B"], s["C"], s["g2"]
        if baseline in (None, "constant"):
            v = (A - 2 * constant * B + constant**2 * C - g2) / N
        elif baseline == "ema":
            if n_replicates is None:
                raise ValueError("the EMA baseline's variance depends on n_replicates")
            mb, mb2 = ema_baseline_moments(m.F1, (m.F2 - m.F1**2) / N, decay, n_replicates)
            v = (A - 2 * mb * B + mb2 * C - g2) / N
        elif baseline == "loo":
            if N < 2:
                raise ValueError("leave-one-out needs n_samples >= 2")
            v = (A - g2) / N + (m.F2 * C + g2 + (N - 2) * C * m.F1**2) / (N * (N - 1)) - 2 * B * m.F1 / N
        else:
            raise ValueError(f"unknown baseline {baseline!r}")
        out[name] = v
    return _with_total(out)


def reparameterization_variance(problem: GaussianProblem, n_samples: int, rule: Rule | None = None) -> dict[str, float]:
    m = GaussianMoments(problem, rule)
    return _with_total({k: v / n_samples for k, v in m.pathwise.items()})


def score_function_variance_gaussian_phi(problem, n_samples: int, n_nodes: int = 40) -> dict[str, float]:
    r"""Exact variance of the score function on a problem whose phi is one Gaussian ``(loc, scale)``
    (``policy_mlp``), per theta row: ``trace(J_t^T Cov_phi J_t) / N`` with ``Cov_phi = E[f^2 s s^T]
    - g g^T``, the phi-space score ``s = ((x-mu)/std^2, ((x-mu)^2 - std^2)/std^3)``, by
    Gauss-Hermite (exact for a polynomial cost of degree below ``n_nodes - 2``)."""
    theta = with_runs(None, problem, "cpu", torch.float64)
    phi = problem.encode(theta)
    (loc_name, loc), (scale_name, scale) = list(phi.items())
    mu, std = float(loc.reshape(-1)[0]), float(scale.reshape(-1)[0])
    eps, w = gauss_hermite(n_nodes)
    x = mu + std * eps
    f = problem.cost(x)
    s = torch.stack([eps / std, (eps * eps - 1) / std])  # [2, nodes]
    g = (w * f * s).sum(1)
    cov = torch.einsum("n,in,jn->ij", w * f * f, s, s) - torch.outer(g, g)
    J = encode_jacobian(problem, theta)[0]  # [2, P_theta]
    out, start = {}, 0
    for name, v in theta.items():
        Jt = J[:, start:start + v[0].numel()]
        out[name] = float(torch.trace(Jt.T @ cov @ Jt)) / n_samples
        start += v[0].numel()
    return _with_total(out)


def _cells(alpha: torch.Tensor):
    r"""The :math:`3^d` cells of ``u`` in which a two-point Bernoulli estimator's bits are constant:
    per bit, ``u_j`` cut at :math:`\sigma(-|\alpha_j|)` and :math:`\sigma(|\alpha_j|)`; yields each
    cell's probability, its lower and upper edges and a point inside it."""
    d = alpha.numel()
    lo, hi = torch.sigmoid(-alpha.abs()), torch.sigmoid(alpha.abs())
    edges = torch.stack([torch.zeros(d, dtype=torch.float64), lo, hi, torch.ones(d, dtype=torch.float64)], 1)
    for cell in itertools.product(range(3), repeat=d):
        idx = torch.tensor(cell)
        a, b = edges[torch.arange(d), idx], edges[torch.arange(d), idx + 1]
        if ((b - a) <= 0).any():
            continue
        yield float((b - a).prod()), a, b, (a + b) / 2  # any point of the cell gives the same bits


def arm_variance_by_cells(problem, n_samples: int) -> dict[str, float]:
    r"""Exact variance of ARM on a Bernoulli problem with theta = logits, by enumerating cells.

    ARM's estimate :math:`(f(1[u > \sigma(-\alpha)]) - f(1[u < \sigma(\alpha)]))(u - 1/2)` is, per
    bit, constant in ``f``'s arguments on each cell (:func:`_cells`); ``u`` is uniform and
    independent per bit, so :math:`E[\hat g_j^2] = \sum_{cells} P(cell)\,\Delta^2\,E[(u_j - 1/2)^2 \mid cell]`."""
    alpha = problem.init_params("cpu", torch.float64)["logits"]
    first, second = torch.zeros_like(alpha), torch.zeros_like(alpha)
    for p, a, b, u in _cells(alpha):
        delta = float(problem.cost((u > torch.sigmoid(-alpha)).double()) - problem.cost((u < torch.sigmoid(alpha)).double()))
        first += p * delta * ((a + b) / 2 - 0.5)  # E[u - 1/2 | cell]
        second += p * delta * delta * ((b - 0.5) ** 3 - (a - 0.5) ** 3) / (3 * (b - a))  # E[(u - 1/2)^2 | cell]
    v = float((second - first**2).sum()) / n_samples
    return {"logits": v, "total": v}


def disarm_variance_by_cells(problem, n_samples: int) -> dict[str, float]:
    r"""Exact variance of DisARM on a Bernoulli problem with theta = logits, by enumerating cells:
    with :math:`b = 1[u < \sigma(\alpha)]` and :math:`\tilde b = 1[1 - u < \sigma(\alpha)]` constant on
    each cell (:func:`_cells`), so is the estimate
    :math:`\tfrac12(f(b) - f(\tilde b))(-1)^{\tilde b_j} 1[b_j \ne \tilde b_j]\sigma(|\alpha_j|)`."""
    alpha = problem.init_params("cpu", torch.float64)["logits"]
    first, second = torch.zeros_like(alpha), torch.zeros_like(alpha)
    prob = torch.sigmoid(alpha)
    for p, _, _, u in _cells(alpha):
        bits, anti = (u < prob).double(), (1 - u < prob).double()
        g = 0.5 * float(problem.cost(bits) - problem.cost(anti)) * (1 - 2 * anti) * (bits != anti).double() \
            * torch.sigmoid(alpha.abs())
        first += p * g
        second += p * g * g
    v = float((second - first**2).sum()) / n_samples
    return {"logits": v, "total": v}


def enumerate_support(dist) -> torch.Tensor:
    """Every outcome of one replicate's discrete distribution: ``[M, *event]``, from the
    distributions' own ``enumerate_support`` (independent Bernoulli bits: all ``2^dim`` bit vectors
    as the product of each bit's support; one-hot categorical: the ``K`` unit vectors)."""
    base = dist.base_dist if isinstance(dist, D.Independent) else dist
    values = base.enumerate_support(expand=False).reshape(-1, *base.event_shape)  # one coordinate's support
    if isinstance(dist, D.Independent) and dist.event_shape:
        grid = torch.cartesian_prod(*[values.reshape(-1)] * dist.event_shape[0])
        return grid.reshape(-1, *dist.event_shape)
    return values


def measure_valued_variance_quadratic(problem, n_samples: int, coupling: bool) -> dict[str, float]:
    r"""Exact variance of the measure-valued estimator on ``gaussian_quadratic`` (closed form).

    With :math:`a = \mu - k`, per coordinate (other coordinates cancel in the difference):
    mean, coupled :math:`a^2(16/\pi - 4)`; uncoupled :math:`8a^2/\pi - 2a^2 + 4\sigma^2/\pi`;
    scale, coupled :math:`4a^2 + 4\sigma^2`; uncoupled :math:`16a^2 + 8\sigma^2`. Derivation in
    ``tests/test_discrete_and_wider_estimators.py``."""
    a, s = problem.mu - problem.k, problem.sigma
    if coupling:
        mu, sigma = a * a * (16 / math.pi - 4), 4 * a * a + 4 * s * s
    else:
        mu, sigma = 8 * a * a / math.pi - 2 * a * a + 4 * s * s / math.pi, 16 * a * a + 8 * s * s
    d = problem.dim
    return _with_total({"mu": d * mu / n_samples, "sigma": d * sigma / n_samples})


def exact_variance(problem: Problem, estimator: Estimator, n_samples: int, n_replicates: int
                   ) -> dict[str, float] | None:
    """The exact variance of one estimate per parameter tensor and ``total``, where a registered
    formula holds (:func:`find_formula`); ``None`` otherwise. Errors in a formula are raised, not
    hidden."""
    found = find_formula(estimator, problem)
    return None if found is None else found[1](problem, estimator, n_samples, n_replicates)


def exact_variance_curve(problem: Problem, estimator: Estimator, key: str, grid, n_samples: int,
                         n_replicates: int, param: str) -> np.ndarray | None:
    """The exact variance of ``param`` along the problem option ``key`` (``None`` if unknown)."""
    values = []
    for value in grid:
        moved = type(problem)(**{**problem.options(), key: float(value)})
        v = exact_variance(moved, estimator, n_samples, n_replicates)
        if v is None:
            return None
        values.append(v[param])
    return np.array(values)


# The registrations. Discrete problems are enumerated when theta is phi and the outcomes are few.

def _enumerable(problem) -> bool:
    return problem.identity_encode and getattr(problem, "dim", 1) <= MAX_ENUMERATED_BITS


@register_exact_variance(Exact, Problem)
def _exact(problem, estimator, n_samples, n_replicates):
    names = list(problem.init_params("cpu", torch.float64))
    return {**{k: 0.0 for k in names}, "total": 0.0}


@register_exact_variance(ScoreFunction, GaussianProblem)
@register_exact_variance(ScoreFunction, BernoulliProblem)
@register_exact_variance(ScoreFunction, CategoricalBandit)
def _score_function(problem, estimator, n_samples, n_replicates):
    if not isinstance(problem, GaussianProblem) and not _enumerable(problem):
        return None
    return score_function_variance(problem, n_samples)


@register_exact_variance(ScoreFunctionBaseline, GaussianProblem)
@register_exact_variance(ScoreFunctionBaseline, BernoulliProblem)
@register_exact_variance(ScoreFunctionBaseline, CategoricalBandit)
def _score_function_baseline(problem, estimator, n_samples, n_replicates):
    if estimator.baseline not in ("ema", "loo") or not (isinstance(problem, GaussianProblem) or _enumerable(problem)):
        return None  # the optimal baseline's variance has no formula here
    return score_function_variance(problem, n_samples, estimator.baseline, estimator.decay, n_replicates)


@register_exact_variance(ScoreFunction, PolicyMLP)
def _score_function_policy(problem, estimator, n_samples, n_replicates):
    return score_function_variance_gaussian_phi(problem, n_samples)


@register_exact_variance(Reparameterization, GaussianProblem)
def _reparameterization(problem, estimator, n_samples, n_replicates):
    return reparameterization_variance(problem, n_samples)


@register_exact_variance(MeasureValued, GaussianQuadratic)
def _measure_valued(problem, estimator, n_samples, n_replicates):
    return measure_valued_variance_quadratic(problem, n_samples, estimator.coupling)


MAX_ARM_CELL_BITS = 8  # 3^d cells


@register_exact_variance(ARM, BernoulliProblem)
def _arm(problem, estimator, n_samples, n_replicates):
    return arm_variance_by_cells(problem, n_samples) if problem.dim <= MAX_ARM_CELL_BITS else None


@register_exact_variance(DisARM, BernoulliProblem)
def _disarm(problem, estimator, n_samples, n_replicates):
    return disarm_variance_by_cells(problem, n_samples) if problem.dim <= MAX_ARM_CELL_BITS else None
