"""Streaming statistics of gradient estimates: variance, bias and MSE with standard errors.

Estimates arrive in chunks as rows of a ``[C, P_phi]`` matrix of gradients with respect to the
distribution parameters phi. A :class:`Projection` maps them to the problem's parameters theta
(``g_theta = J^T g_phi``, exact because the cost does not depend on theta), and groups theta's
coordinates into result rows (one per parameter tensor, plus ``total``). :class:`GradientMoments`
reduces as it goes, in float64, so the ``R x P`` matrix of estimates is never kept. With
``d = g - shift`` (the shift is the first chunk's mean, which keeps the sums free of
cancellation), a row's squared norm per replicate is linear in a few features ``e`` of ``d``
(``d*d`` for the identity Jacobian, ``vec(d d^T)`` otherwise). When there are few features, two
Gram matrices per chunk (``e^T e`` and ``e^T d``) give every row's sums at once; otherwise each
row's squared norms are formed per replicate.

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

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
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
        self.n_phi = start if self.J is None else self.J.shape[0]
        # row_forms[t]: the quadratic form of row t, K_t = J_t J_t^T (P_phi x P_phi), or in identity
        # mode the 0/1 mask of the row's coordinates.
        if self.J is None:
            self.row_masks = torch.zeros(start, len(self.rows), dtype=torch.float64)
            for t, row in enumerate(self.rows):
                self.row_masks[row.cols, t] = 1.0
            self.row_forms = list(self.row_masks.T)
        else:
            self.row_forms = [self.J[:, r.cols] @ self.J[:, r.cols].T for r in self.rows]

    @property
    def full(self) -> bool:
        return self.J is not None

    def to(self, device):
        if self.J is not None:
            self.J = self.J.to(device)
        else:
            self.row_masks = self.row_masks.to(device)
        self.row_forms = [k.to(device) for k in self.row_forms]
        return self

    def quad(self, d: torch.Tensor, t: int) -> torch.Tensor:
        """``d_r^T K_t d_r`` for every column ``d_r`` of ``d`` (``[P_phi, C]``)."""
        K = self.row_forms[t]
        return ((K @ d) * d).sum(0) if self.full else K @ (d * d)

    def to_theta(self, v: torch.Tensor) -> torch.Tensor:
        """``J^T v`` for a vector or the rows of a matrix."""
        if not self.full:
            return v
        return v @ self.J


class GradientMoments:
    """Accumulates chunks of phi-space estimates; :meth:`result` gives one dict per row."""

    # Up to this many features per replicate, accumulate their Gram matrices (two matmuls per
    # chunk); beyond it, form each row's squared norms per replicate instead.
    MAX_GRAM_FEATURES = 16

    def __init__(self, projection: Projection, device):
        self.p = projection.to(device)
        P = projection.n_phi
        f64 = dict(dtype=torch.float64, device=device)
        self.count = 0
        self.shift: torch.Tensor | None = None
        self.S1 = torch.zeros(P, **f64)
        # Features e of a replicate: d*d (identity) or vec(d d^T) (Jacobian); q_t = e . W[:, t].
        n_features = P * P if projection.full else P
        self.gram = n_features <= self.MAX_GRAM_FEATURES
        if projection.full:
            self.W = torch.stack([k.reshape(-1) for k in projection.row_forms], 1).to(**f64)
        else:
            self.W = projection.row_masks.to(**f64)
        self.Se = torch.zeros((P, P) if projection.full and not self.gram else n_features, **f64)
        n_rows = len(projection.rows)
        if self.gram:
            self.E4 = torch.zeros(n_features, n_features, **f64)
            self.E3 = torch.zeros(n_features, P, **f64)
        else:
            self.Q2 = torch.zeros(n_rows, **f64)
            self.QD = torch.zeros(n_rows, P, **f64)

    def update(self, G: torch.Tensor) -> None:
        """Add a chunk of estimates, one per *column* of ``G`` (``[P_phi, C]``): reductions along
        contiguous rows are several times faster than along the columns of ``[C, P_phi]``."""
        if G.shape[1] == 0:
            return
        if self.shift is None:
            self.shift = G.to(torch.float64).mean(1)
        self.count += G.shape[1]
        if self.gram:
            S1, Se, E4, E3 = self.chunk_sums(G, self.shift, self.p.full)
            self.S1 += S1
            self.Se += Se
            self.E4 += E4
            self.E3 += E3
            return
        d = G.to(torch.float64) - self.shift[:, None]
        self.S1 += d.sum(1)
        if self.p.full:
            self.Se += d @ d.T
            Q = torch.stack([self.p.quad(d, t) for t in range(len(self.p.rows))])
        else:
            e = d * d
            self.Se += e.sum(1)
            Q = self.W.T @ e
        self.Q2 += (Q * Q).sum(1)
        self.QD += Q @ d.T

    @staticmethod
    def gram_sums(G: torch.Tensor, shift: torch.Tensor, full: bool):
        """A chunk's sums for the Gram path: ``sum d``, ``sum e``, ``e e^T``, ``e d^T`` (float64),
        ``d = G - shift``, ``e = d*d`` or ``vec(d d^T)``. A pure function, so it can be compiled."""
        d = G.to(torch.float64) - shift[:, None]
        e = (d[:, None, :] * d[None, :, :]).reshape(-1, d.shape[1]) if full else d * d
        return d.sum(1), e.sum(1), e @ e.T, e @ d.T

    chunk_sums = gram_sums  # replaced by a compiled version with compile=true

    def _row_sums(self):
        """Per row: sum of q, sum of q^2, sum of q d (over all replicates so far), and sum d d^T."""
        S2 = self.Se.reshape(self.p.n_phi, self.p.n_phi) if self.p.full else self.Se
        Q1 = self.Se.reshape(-1) @ self.W
        if self.gram:
            Q2 = ((self.E4 @ self.W) * self.W).sum(0)
            QD = self.W.T @ self.E3
        else:
            Q2, QD = self.Q2, self.QD
        return Q1, Q2, QD, S2

    def result(self, exact_phi: torch.Tensor | None, dtype: torch.dtype) -> list[dict]:
        """One dict per row. The arithmetic is on small arrays, so it runs in numpy (float64)."""
        R = self.count
        nan = float("nan")
        if R < 2:
            return [dict(param=row.name, dim=len(row.cols), variance=nan, variance_se=nan, bias=nan, bias_se=nan,
                         bias_significant=None, mse=nan, true_grad_norm=nan) for row in self.p.rows]
        Q1, Q2, QD, S2 = (x.cpu().numpy() for x in self._row_sums())
        S1, shift = self.S1.cpu().numpy(), self.shift.cpu().numpy()
        full = self.p.full
        Ks = [k.cpu().numpy() for k in self.p.row_forms]
        J = self.p.J.cpu().numpy() if full else None

        def K(t, v):
            return Ks[t] @ v if full else Ks[t] * v

        def to_theta(v):
            return v @ J if full else v

        mu = S1 / R
        cov = S2 / R - (np.outer(mu, mu) if full else mu * mu)  # Cov(d), 1/R normalised
        theta_var = ((J.T @ cov) * J.T).sum(1) if full else cov
        theta_var = theta_var * (R / (R - 1))
        if exact_phi is not None:
            exact = exact_phi.detach().cpu().double().numpy()
            bias_theta = to_theta(shift + mu - exact)
            exact_theta = to_theta(exact)
            offset = shift - exact  # e = d + offset is the error of an estimate
        rows = []
        for t, row in enumerate(self.p.rows):
            cols = row.cols.numpy()
            Kmu = K(t, mu)
            variance = (Q1[t] - R * (mu @ Kmu)) / (R - 1)
            var_q = Q2[t] / R - (Q1[t] / R) ** 2
            cross = QD[t] / R - (Q1[t] / R) * mu
            quad = Kmu @ cov @ Kmu if full else (Kmu * Kmu * cov).sum()
            infl = var_q - 4 * (Kmu @ cross) + 4 * quad
            out = dict(
                param=row.name,
                dim=len(cols),
                variance=float(variance),
                variance_se=math.sqrt(max(float(infl), 0.0) / R),
                bias=nan, bias_se=nan, bias_significant=None, mse=nan, true_grad_norm=nan,
            )
            if exact_phi is not None:
                b = bias_theta[cols]
                Koff = K(t, offset)
                mse = (Q1[t] + 2 * (Koff @ S1) + R * (offset @ Koff)) / R
                out.update(
                    bias=float(np.linalg.norm(b)),
                    bias_se=math.sqrt(max(float(variance), 0.0) / R),
                    bias_significant=_significant(b, theta_var[cols] / R, exact_theta[cols], dtype),
                    mse=float(mse),
                    true_grad_norm=float(np.linalg.norm(exact_theta[cols])),
                )
            rows.append(out)
        return rows


@functools.lru_cache(maxsize=256)
def _z_critical(n_coordinates: int) -> float:
    return NormalDist().inv_cdf(1 - SIGNIFICANCE_LEVEL / (2 * n_coordinates))


def _significant(bias: np.ndarray, var_of_mean: np.ndarray, exact: np.ndarray, dtype) -> bool:
    """Bonferroni z-test over the coordinates at family-wise level ``SIGNIFICANCE_LEVEL``."""
    z_crit = _z_critical(bias.size)
    se = np.sqrt(np.clip(var_of_mean, 0.0, None))
    noisy = se > 0
    if bool((np.abs(bias[noisy]) > z_crit * se[noisy]).any()):
        return True
    tol = math.sqrt(torch.finfo(dtype).eps) * np.maximum(np.abs(exact[~noisy]), 1.0)
    return bool((np.abs(bias[~noisy]) > tol).any())
