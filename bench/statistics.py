"""Streaming statistics of gradient estimates: variance, bias and MSE with standard errors.

Estimates arrive in chunks as rows of a ``[C, P_phi]`` matrix of gradients with respect to the
distribution parameters phi. A :class:`Projection` maps them to the problem's parameters theta
(``g_theta = J^T g_phi``, exact because the cost does not depend on theta), and groups theta's
coordinates into result rows (one per parameter tensor, plus ``total``). :class:`GradientMoments`
reduces as it goes (float64 sums of shifted first and second moments, and of each row's squared
norm, its square and its product with the estimate), so the ``R x P`` matrix of estimates is never
kept. The shift is the first chunk's mean, which keeps the sums free of cancellation.

For a row with ``K = J_t J_t^T`` and ``d = g - shift``, the per-replicate squared norm is
``q = d^T K d``. Then, with ``mu = mean(d)``:

* ``variance = (sum q - R mu^T K mu) / (R - 1)``: the trace of the row's covariance;
* ``variance_se = sqrt(Var[(d - mu)^T K (d - mu)] / R)``, the delta-method standard error, with
  ``Var[(d+a)^T K (d+a)] = Var q + 4 (Ka)^T (E[q d] - E[q] mu) + 4 (Ka)^T Cov(d) (Ka)``;
* ``bias = ||J_t^T (mean g - g*)||``, ``bias_se = sqrt(variance / R)`` (the root of the summed
  squared standard errors of the mean's coordinates: what ``bias`` is for an unbiased estimator);
* ``bias_significant``: a two-sided z-test per coordinate at family-wise level 0.1 % (Bonferroni
  over the row's coordinates); a coordinate with zero variance counts as biased when it is off by
  more than ``sqrt(eps) * max(1, |g*|)``;
* ``mse = mean ||J_t^T (g - g*)||^2``.

For problems whose theta is phi itself (identity Jacobian), only the diagonal of Cov(d) is kept;
the one term that uses Cov(d) then drops its off-diagonal part, which is exact with a single chunk
and second order in (mean - shift) otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import torch

SIGNIFICANCE_LEVEL = 0.001


@dataclass
class Row:
    name: str
    cols: torch.Tensor  # theta coordinates in this row


class Projection:
    """phi-space gradients -> theta-space rows, with an explicit Jacobian or the identity."""

    def __init__(self, row_sizes: dict[str, int], jacobian: torch.Tensor | None):
        self.J = None if jacobian is None else jacobian.to(torch.float64)
        self.rows: list[Row] = []
        start = 0
        for name, size in row_sizes.items():
            self.rows.append(Row(name, torch.arange(start, start + size)))
            start += size
        self.rows.append(Row("total", torch.arange(start)))
        self.n_theta = start
        self.n_phi = start if self.J is None else self.J.shape[0]
        if self.J is None:
            self._K = []
            for row in self.rows:
                mask = torch.zeros(start, dtype=torch.float64)
                mask[row.cols] = 1.0
                self._K.append(mask)
        else:
            self._K = [self.J[:, r.cols] @ self.J[:, r.cols].T for r in self.rows]

    @property
    def full(self) -> bool:
        return self.J is not None

    def to(self, device):
        if self.J is not None:
            self.J = self.J.to(device)
        self._K = [k.to(device) for k in self._K]
        return self

    def quad(self, d: torch.Tensor, t: int) -> torch.Tensor:
        """``d_r^T K_t d_r`` for every row ``d_r`` of ``d``."""
        K = self._K[t]
        return ((d @ K) * d).sum(1) if self.full else (d * d) @ K

    def K(self, v: torch.Tensor, t: int) -> torch.Tensor:
        return self._K[t] @ v if self.full else self._K[t] * v

    def to_theta(self, v: torch.Tensor) -> torch.Tensor:
        """``J^T v`` for a vector or the rows of a matrix."""
        if not self.full:
            return v
        return v @ self.J

    def theta_variances(self, cov: torch.Tensor) -> torch.Tensor:
        """Diagonal of ``J^T Cov J`` (``cov`` is the diagonal itself in identity mode)."""
        if not self.full:
            return cov
        JT = self.J.T
        return ((JT @ cov) * JT).sum(1)

    def quadratic_form(self, w: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        return w @ cov @ w if self.full else (w * w * cov).sum()


class GradientMoments:
    """Accumulates chunks of phi-space estimates; :meth:`result` gives one dict per row."""

    def __init__(self, projection: Projection, device):
        self.p = projection.to(device)
        P = projection.n_phi
        f64 = dict(dtype=torch.float64, device=device)
        self.count = 0
        self.shift: torch.Tensor | None = None
        self.S1 = torch.zeros(P, **f64)
        self.S2 = torch.zeros((P, P) if projection.full else P, **f64)
        n_rows = len(projection.rows)
        self.Q1 = torch.zeros(n_rows, **f64)
        self.Q2 = torch.zeros(n_rows, **f64)
        self.QD = torch.zeros(n_rows, P, **f64)

    def update(self, G: torch.Tensor) -> None:
        G = G.to(torch.float64)
        if G.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = G.mean(0)
        d = G - self.shift
        self.count += G.shape[0]
        self.S1 += d.sum(0)
        self.S2 += d.T @ d if self.p.full else (d * d).sum(0)
        for t in range(len(self.p.rows)):
            q = self.p.quad(d, t)
            self.Q1[t] += q.sum()
            self.Q2[t] += q @ q
            self.QD[t] += q @ d

    def result(self, exact_phi: torch.Tensor | None, dtype: torch.dtype) -> list[dict]:
        R = self.count
        nan = float("nan")
        if R < 2:
            return [dict(param=row.name, dim=len(row.cols), variance=nan, variance_se=nan, bias=nan, bias_se=nan,
                         bias_significant=None, mse=nan, true_grad_norm=nan) for row in self.p.rows]
        mu = self.S1 / R
        cov = self.S2 / R - (torch.outer(mu, mu) if self.p.full else mu * mu)  # Cov(d), 1/R normalised
        cov_unbiased = cov * (R / (R - 1))
        mean_phi = self.shift + mu
        theta_var = self.p.theta_variances(cov_unbiased)
        if exact_phi is not None:
            exact_phi = exact_phi.to(torch.float64)
            delta = mean_phi - exact_phi
            bias_theta = self.p.to_theta(delta)
            exact_theta = self.p.to_theta(exact_phi)
            offset = self.shift - exact_phi  # e = d + offset is the error of an estimate
        rows = []
        for t, row in enumerate(self.p.rows):
            Kmu = self.p.K(mu, t)
            variance = (self.Q1[t] - R * (mu @ Kmu)) / (R - 1)
            var_q = self.Q2[t] / R - (self.Q1[t] / R) ** 2
            cross = self.QD[t] / R - (self.Q1[t] / R) * mu
            infl = var_q - 4 * (Kmu @ cross) + 4 * self.p.quadratic_form(Kmu, cov)
            out = dict(
                param=row.name,
                dim=len(row.cols),
                variance=float(variance),
                variance_se=math.sqrt(max(float(infl), 0.0) / R),
                bias=nan, bias_se=nan, bias_significant=None, mse=nan, true_grad_norm=nan,
            )
            if exact_phi is not None:
                b = bias_theta[row.cols]
                Koff = self.p.K(offset, t)
                mse = (self.Q1[t] + 2 * (Koff @ self.S1) + R * (offset @ Koff)) / R
                out.update(
                    bias=float(b.norm()),
                    bias_se=math.sqrt(max(float(variance), 0.0) / R),
                    bias_significant=_significant(b, theta_var[row.cols] / R, exact_theta[row.cols], dtype),
                    mse=float(mse),
                    true_grad_norm=float(exact_theta[row.cols].norm()),
                )
            rows.append(out)
        return rows

    def mean_theta(self) -> torch.Tensor:
        return self.p.to_theta(self.shift + self.S1 / self.count)


def _significant(bias: torch.Tensor, var_of_mean: torch.Tensor, exact: torch.Tensor, dtype) -> bool:
    """Bonferroni z-test over the coordinates at family-wise level ``SIGNIFICANCE_LEVEL``."""
    m = bias.numel()
    z_crit = NormalDist().inv_cdf(1 - SIGNIFICANCE_LEVEL / (2 * m))
    se = var_of_mean.clamp_min(0).sqrt()
    noisy = se > 0
    if bool((bias[noisy].abs() > z_crit * se[noisy]).any()):
        return True
    tol = math.sqrt(torch.finfo(dtype).eps) * exact[~noisy].abs().clamp_min(1.0)
    return bool((bias[~noisy].abs() > tol).any())
