r"""Streaming statistics of gradient estimates: variance, bias and MSE, with standard errors that
hold for dependent replicates and whatever the chunking, and one bias test per job.

Layout. Estimates arrive in chunks as ``G``, ``[S, P_phi, C]``: S independent runs (1 for a job;
many seeds in ``bench.calibrate``, many training runs in ``bench.train``), the P_phi coordinates of
the gradient with respect to the distribution's parameters phi, and C consecutive replicates. A
:class:`Projection` maps phi to the problem's parameters theta (``g_theta = J^T g_phi``, exact
because the cost does not depend on theta) and groups theta's coordinates into result rows (one
per parameter tensor, plus ``total``). :class:`GradientMoments` reduces as it goes, in float64,
so the ``R x P`` matrix of estimates is never kept.

Per run, with ``d = g - shift`` (the exact gradient when it is known, else the first chunk's
mean: it keeps the sums free of cancellation; the per-replicate arithmetic runs in the estimates'
dtype (sums of a batch, pairwise, in that dtype), the sums across batches in float64), a row ``t`` with quadratic form
``K_t = J_t J_t^T`` has the per-replicate squared norm ``q_t = d^T K_t d``, and with
``mu = mean(d)`` over the R replicates:

* ``variance = (sum q_t - R mu^T K_t mu) / (R - 1)``: the trace of the row's covariance;
* ``variance_se``: by **batch means** over the replicate order. The replicates are cut into B
  consecutive batches (at most 1024; for an estimator with state, each at least as long as the
  number of steps its state remembers, e.g. ``1 / (1 - decay)`` for an EMA baseline). The
  variance is a smooth function of the means of ``q`` and ``d``; its influence value per replicate
  is ``psi = q_t - 2 (K_t mu)^T d``, and the variance of the mean of ``psi`` is estimated from the
  spread of its batch means: ``sum_b n_b (psi_b - psi)^2 / (B - 1) / R``. This is the standard
  method for dependent sequences (the EMA baseline's estimates are uncorrelated but share the
  baseline's error, so their squares are not), exact in the linearisation (no covariance
  between coordinates is dropped), and the same whatever the chunking. With state, batches one
  memory long are still correlated with their neighbours (the baseline's error decays as
  ``decay^k``: ``e^-1`` at one memory), so the spread adds the covariances of batch means
  ``STATE_LAGS`` batches apart (``2 sum_k sum_b sqrt(n_b n_(b+k)) dev_b dev_(b+k) / (B - 1)``):
  plain batch means ten memories long still left the standard error 8-9 % short and had too few
  batches below 1e4 replicates (bench.calibrate's ``ema_short``). The warm-up batch (the baseline
  from nothing) is counted like the others: its mean's own deviation is part of the estimate's
  variance. It assumes the estimates' fourth moment is finite (a problem says when it is not: the
  column is then empty, with a message). With B - 1 degrees of freedom the standard error itself
  has a relative spread of about ``1/sqrt(2(B - 1))`` (about ``sqrt(1 + 2 STATE_LAGS)`` times that
  with state).
* ``bias = ||J_t^T (mean g - g*)||``; ``bias_se = sqrt(variance / R)`` (what ``bias`` is for an
  unbiased estimator); ``cosine_to_exact`` and ``norm_ratio_to_exact`` compare the mean estimate's
  direction and length with the exact gradient's, per row.
* ``bias_significant`` / ``bias_p_value``: **one test per job, in phi**, where the randomness
  lives: a two-sided t-test per phi coordinate (R - 1 degrees of freedom) on the mean estimate
  against the exact gradient, Bonferroni-combined over the coordinates that vary, at family-wise
  level ``SIGNIFICANCE_LEVEL`` (0.1 %); a coordinate with zero variance counts as biased when it is
  off by more than ``sqrt(eps) * max(1, |g*|)``. The per-coordinate variance uses the iid formula,
  which holds for stateful unbiased estimators too: given the past, each estimate has mean ``g*``,
  so the estimates are uncorrelated (a martingale-difference sequence). Every row of a job carries
  the job's result; the per-row ``bias`` and ``bias_se`` stay for reading.
* ``mse = mean ||J_t^T (g - g*)||^2``.

Floors: below ``MIN_REPLICATES_FOR_SE`` replicates (or fewer than ``MIN_BATCHES`` batches, ``MIN_STATE_BATCHES``
with state) the
standard errors are left empty, and below ``MIN_REPLICATES_FOR_BIAS_TEST`` the bias test is, each
with a message: ``bench.calibrate`` measured the smallest counts at which the stated level holds
for skewed estimators (see the README's calibration table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import special

SIGNIFICANCE_LEVEL = 0.001
# A coordinate is tested when, at the Bonferroni threshold, the first Edgeworth term of its t statistic's
# tail is at most FIRST_TERM_TOLERANCE times the normal tail and the second at most SECOND_TERM_TOLERANCE
# (chosen by bench.calibrate's sparse_rloo, rare_category and rare_bit cases; see _bias_test).
FIRST_TERM_TOLERANCE = 2.0
SECOND_TERM_TOLERANCE = 1.0
ROUNDING_ULPS = 1024  # a spread below this many ulps of the estimate's size is rounding, not a heavy tail
HEAVY_TAIL_DRAWS = 4  # a variance carried by fewer rare draws than this gets no standard error
MAX_BATCHES = 1024
MIN_BATCHES = 10
MIN_STATE_BATCHES = 50  # with state: 20 batches one memory long covered 88.8 %, 50 covered 93.3 % (ema_short)
MEMORY_MULTIPLE = 1  # with state, batches are at least this many times its memory (bench.calibrate's ema_short)
STATE_LAGS = 2  # with state, the batch means' covariances up to this many batches apart join the spread
MIN_REPLICATES_FOR_SE = 1000
MIN_REPLICATES_FOR_BIAS_TEST = 2000
MAX_BATCH_ELEMENTS = 2**24  # float64 entries in the batch sums (128 MB), across all runs
# A row's statistics, in the order of its columns.
_ROW_STATISTICS = ("variance", "variance_se", "bias", "bias_se", "bias_significant", "bias_p_value", "mse",
                   "true_grad_norm", "cosine_to_exact", "norm_ratio_to_exact")


@dataclass
class Row:
    name: str
    cols: torch.Tensor  # theta coordinates in this row


class Projection:
    """phi-space gradients -> theta-space rows, per run: the identity, or a Jacobian ``[S, P_phi, P_theta]``.

    ``mode`` says how a replicate's per-row squared norms are formed, whichever is cheaper:
    ``identity`` (theta is phi: masked sums of ``d*d``), ``features`` (``vec(d d^T)`` times the
    rows' quadratic forms ``K_t = J_t J_t^T``, for small P_phi) or ``theta`` (project ``J^T d``,
    then masked sums of squares).
    """

    def __init__(self, row_sizes: dict[str, int], jacobian: torch.Tensor | None,
                 components: dict[str, torch.Tensor] | None = None):
        self.J = None if jacobian is None else jacobian.to(torch.float64)
        self.components = dict(components or {})  # name -> phi coordinates (e.g. a prompt's)
        self.rows: list[Row] = []
        start = 0
        for name, size in row_sizes.items():
            self.rows.append(Row(name, torch.arange(start, start + size)))
            start += size
        self.rows.append(Row("total", torch.arange(start)))
        self.n_theta = start
        self.n_phi = start if self.J is None else self.J.shape[1]
        # masks[:, t]: the 0/1 indicator of row t's theta coordinates
        self.masks = torch.zeros(start, len(self.rows), dtype=torch.float64)
        for t, row in enumerate(self.rows):
            self.masks[row.cols, t] = 1.0
        if self.J is None:
            self.mode = "identity"
        else:
            T, P, Pt = len(self.rows), self.n_phi, self.n_theta
            self.mode = "features" if P * P * (T + 1) <= P * Pt + Pt * T else "theta"
        if self.mode == "features":
            # W[s, :, t] = vec(K_t) for run s: q_t = vec(d d^T) . W[:, t]
            self.W = torch.stack([torch.einsum("spi,sqi->spq", self.J[:, :, r.cols], self.J[:, :, r.cols])
                                  .reshape(self.J.shape[0], -1) for r in self.rows], 2)

    def to(self, device):
        self.masks = self.masks.to(device)
        if self.J is not None:
            self.J = self.J.to(device)
        if self.mode == "features":
            self.W = self.W.to(device)
        return self

    def row_squares(self, d: torch.Tensor, squares: torch.Tensor | None = None) -> torch.Tensor:
        """Per-row squared norms in theta of each replicate: ``d`` ``[S, P_phi, C]`` -> ``[S, T, C]``
        (``squares``: ``d * d`` when the caller has it)."""
        if self.mode == "identity":
            masks = self.masks if self.masks.dtype == d.dtype else self.masks.to(d.dtype)
            return torch.matmul(masks.T, d * d if squares is None else squares)
        if self.mode == "features":
            S, P, C = d.shape
            e = (d[:, :, None, :] * d[:, None, :, :]).reshape(S, P * P, C)
            return torch.bmm(self.W.transpose(1, 2).to(d.dtype), e)
        dt = torch.bmm(self.J.transpose(1, 2).to(d.dtype), d)
        return torch.matmul(self.masks.T.to(d.dtype), dt * dt)

    def to_theta(self, v: torch.Tensor) -> torch.Tensor:
        """``J^T v`` per run: ``v`` ``[S, ..., P_phi]`` -> ``[S, ..., P_theta]``."""
        if self.J is None:
            return v
        return torch.matmul(v, self.J) if v.dim() == 3 else torch.einsum("sp,spt->st", v, self.J)


def batch_size(n_replicates: int, memory_steps: int = 0, n_runs: int = 1, width: int = 1) -> int:
    """Replicates per batch of the batch-means standard error (see the module docstring)."""
    max_batches = max(MIN_BATCHES, min(MAX_BATCHES, MAX_BATCH_ELEMENTS // max(1, n_runs * width)))
    return max(1, math.ceil(n_replicates / max_batches), MEMORY_MULTIPLE * memory_steps)


class _RunSums(NamedTuple):
    """One run's sums, in numpy: per batch ``d``, ``q`` (per row) and replicates, and per phi
    coordinate the sum of ``d^2``, the shift, the Jacobian ``[P_phi, P_theta]`` (``None``: theta is
    phi) and the exact gradient (``None``: unknown)."""

    batch_d: np.ndarray
    batch_q: np.ndarray
    batch_n: np.ndarray
    sum_d2: np.ndarray
    sum_d3: np.ndarray
    sum_d4: np.ndarray
    shift: np.ndarray
    J: np.ndarray | None
    exact: np.ndarray | None


class _Settings(NamedTuple):
    """What every run's rows are formed with: the rows' 0/1 masks over theta, the estimates' dtype
    (the bias test's rounding tolerance), the floors and the problem's moment warning."""

    masks: np.ndarray
    dtype: torch.dtype
    min_se: int
    min_bias_test: int
    moment_warning: str | None
    sampled: bool  # whether the estimator draws samples (the exact one does not)


class Segment(NamedTuple):
    """The sums over the batches one stretch of a chunk touches (whole batches, or part of one)."""

    first: int  # its first batch, counted from the batch the chunk starts in
    count: int  # how many batches
    d: torch.Tensor  # [S, count, P_phi]: per batch, the sum of d
    q: torch.Tensor  # [S, count, P_phi or T]: per batch, the sum of q
    n: torch.Tensor | float  # per batch, the replicates summed: [S, count], or one number for all


class ChunkSums(NamedTuple):
    """What a chunk of replicates adds to :class:`GradientMoments`: its per-batch segment sums, the
    sums of ``d^3`` and ``d^4`` per coordinate (``[S, P_phi]``: the bias test's skewness and
    kurtosis) and, unless theta is phi, the sum of ``d * d`` per coordinate."""

    segments: list[Segment]
    sum_d2: torch.Tensor | None
    sum_d3: torch.Tensor
    sum_d4: torch.Tensor
    count: int  # replicates in the chunk


class GradientMoments:
    """Accumulates chunks of phi-space estimates for S runs; :meth:`result` gives each run's rows.
    Two doors: :meth:`add_chunk` takes a chunk's per-replicate deviations (eager; non-finite ones
    are counted and left out), :meth:`add_sums` its :class:`ChunkSums` made elsewhere and known
    finite (the harness's compiled chunk step, which calls the pure :meth:`sums_of`)."""

    def __init__(self, projection: Projection, n_runs: int, n_replicates: int, device, *,
                 batch: int = 1, shift: torch.Tensor | None = None, lags: int = 0):
        self.p = projection.to(device)
        self.S, self.m = n_runs, batch
        self.lags = lags  # the batch means' covariances this many batches apart join the spread (state)
        self.n_batches = math.ceil(n_replicates / batch)
        P, T = projection.n_phi, len(projection.rows)
        # With theta = phi, a row's squared norm is a sum of coordinates' squares: keep each
        # coordinate's (P of them) and form the rows once, at the end, instead of per replicate.
        self.per_coordinate = projection.mode == "identity"
        f64 = dict(dtype=torch.float64, device=device)
        self.shift = None if shift is None else shift.to(**f64)
        self.batch_d = torch.zeros(n_runs, self.n_batches, P, **f64)  # per batch: sum of d
        self.batch_q = torch.zeros(n_runs, self.n_batches, P if self.per_coordinate else T, **f64)  # sum of q
        self.batch_n = torch.zeros(n_runs, self.n_batches, **f64)  # per batch: replicates used
        self._sum_d2 = None if self.per_coordinate else torch.zeros(n_runs, P, **f64)  # per coordinate: sum of d^2
        self.sum_d3 = torch.zeros(n_runs, P, **f64)  # per coordinate: sums of d^3 and d^4
        self.sum_d4 = torch.zeros(n_runs, P, **f64)
        self.n_nonfinite = torch.zeros(n_runs, dtype=torch.long, device=device)
        self.offset = 0  # replicates seen so far (their position sets their batch)

    @property
    def sum_d2(self) -> torch.Tensor:
        """Per run and phi coordinate: the sum of ``d^2``."""
        return self.batch_q.sum(1) if self.per_coordinate else self._sum_d2

    def squares_of(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(q, d * d)`` for a chunk: q per coordinate (theta = phi; the squares are q then, and
        ``None`` is returned for them) or per row."""
        squares = d * d
        return (squares, None) if self.per_coordinate else (self.p.row_squares(d, squares), squares)

    def update(self, G: torch.Tensor) -> None:
        """Add the next C replicates of every run: ``G`` is ``[S, P_phi, C]`` (contiguous along C:
        reductions along contiguous rows are several times faster than along columns).

        The per-replicate arithmetic runs in the estimates' own dtype (``d`` is small: the shift is
        the exact gradient or the first chunk's mean; torch sums pairwise) and the sums across
        batches in float64: half the memory traffic of converting every estimate to float64."""
        if G.shape[2] == 0:
            return
        if self.shift is None:
            finite = torch.isfinite(G).all(1, keepdim=True)
            self.shift = (torch.where(finite, G, 0).double().sum(2) / finite.double().sum(2).clamp_min(1))
        d = G - self.shift[:, :, None].to(G.dtype)
        self.add_chunk(d, *self.squares_of(d))

    def sums_of(self, d: torch.Tensor, q: torch.Tensor, squares: torch.Tensor | None, phase: int,
                n: torch.Tensor | None = None) -> ChunkSums:
        """The :class:`ChunkSums` of a chunk whose first replicate sits at ``phase`` in its batch
        (``squares``: ``d * d`` unless theta is phi; ``n``: a 0/1 weight per replicate, ``[S, C]``,
        when some are left out). Summed in the chunk's dtype (pairwise; a float64 sum of a float32
        chunk casts every value first and ran 50x slower), returned in float64; a pure function
        of its inputs, so the harness's compiled chunk step includes it."""
        sq = q if squares is None else squares
        return ChunkSums(self._segments_of(d, q, phase, n), None if squares is None else squares.sum(2),
                         (d * sq).sum(2).double(), (sq * sq).sum(2).double(), d.shape[2])

    def joined_sums(self, ds: list[torch.Tensor], phase: int) -> ChunkSums:
        """:meth:`sums_of` of ``d = cat(ds, 1)`` and ``q = d * d`` (theta = phi), made part by part
        and joined (the same sums, without ever forming the joined ``d``)."""
        squares = [d * d for d in ds]
        per_part = [self._segments_of(d, sq, phase) for d, sq in zip(ds, squares)]
        segments = [Segment(seg.first, seg.count, torch.cat([p[i].d for p in per_part], 2),
                            torch.cat([p[i].q for p in per_part], 2), seg.n) for i, seg in enumerate(per_part[0])]
        cubes = torch.cat([(d * sq).sum(2).double() for d, sq in zip(ds, squares)], 1)
        fourths = torch.cat([(sq * sq).sum(2).double() for sq in squares], 1)
        return ChunkSums(segments, None, cubes, fourths, ds[0].shape[2])

    @staticmethod
    def finite_flag(sums: ChunkSums) -> torch.Tensor:
        """Whether a chunk's sums are all finite, as a 0-d tensor on the device (a pure function:
        the harness's compiled chunk step includes it)."""
        xs = [x for seg in sums.segments for x in (seg.d, seg.q)] + [sums.sum_d3, sums.sum_d4] + (
            [] if sums.sum_d2 is None else [sums.sum_d2])
        return torch.stack([torch.isfinite(x).all() for x in xs]).all()

    def add_chunk(self, d: torch.Tensor, q: torch.Tensor, squares: torch.Tensor | None = None) -> None:
        """The eager door: C replicates as their deviations from the shift ``d`` ``[S, P_phi, C]``,
        ``q`` and ``squares`` (see :meth:`squares_of`). A chunk with non-finite estimates is taken
        again without them (they are counted, not averaged)."""
        sums = self.sums_of(d, q, squares, self.phase)
        if not bool(self.finite_flag(sums)):
            finite = torch.isfinite(d).all(1) & torch.isfinite(q).all(1)  # [S, C]
            self.n_nonfinite += (~finite).sum(1)
            zero = torch.zeros((), dtype=d.dtype, device=d.device)
            d = torch.where(finite[:, None, :], d, zero)
            q = torch.where(finite[:, None, :], q, zero)
            sums = self.sums_of(d, q, None if squares is None else d * d, self.phase, finite.to(d.dtype))
        self.add_sums(sums)

    def add_sums(self, sums: ChunkSums) -> None:
        """The door for sums made elsewhere (:meth:`sums_of` in the compiled chunk step), known finite."""
        origin = self.offset // self.m  # the batch the chunk starts in
        for seg in sums.segments:
            span = slice(origin + seg.first, origin + seg.first + seg.count)
            # add_ on the view, not `x[span] += y`: that also copies the view back onto itself
            self.batch_d[:, span].add_(seg.d)
            self.batch_q[:, span].add_(seg.q)
            self.batch_n[:, span].add_(seg.n)
        if sums.sum_d2 is not None:
            self._sum_d2.add_(sums.sum_d2)
        self.sum_d3.add_(sums.sum_d3)
        self.sum_d4.add_(sums.sum_d4)
        self.offset += sums.count

    @property
    def phase(self) -> int:
        """Where the next replicate falls inside its batch (0 when chunks are whole batches)."""
        return self.offset % self.m

    def aligned_chunk(self, chunk: int) -> int:
        """``chunk`` rounded down to whole batches where it holds one: every chunk then starts a
        batch, so a compiled chunk step sees one phase and compiles once per chunk size."""
        return chunk - chunk % self.m if chunk >= self.m else chunk

    def _segments_of(self, d, q, phase: int, n=None) -> list[Segment]:
        """Per stretch of the chunk (see :meth:`_stretches`): the per-batch sums of ``d``, ``q`` and
        the replicates counted."""
        S, m = self.S, self.m
        out = []
        for start, stop in self._stretches(phase, d.shape[2]):
            a, b = start - phase, stop - phase
            first = start // m
            count = (stop - start) // m if (stop - start) % m == 0 and start % m == 0 else 0
            if count > 1:  # whole batches: one reshape-and-sum
                sums = [x[:, :, a:b].reshape(S, x.shape[1], count, m).sum(3).double().transpose(1, 2) for x in (d, q)]
                n_sum = n[:, a:b].reshape(S, count, m).sum(2).double() if n is not None else float(m)
                out.append(Segment(first, count, sums[0], sums[1], n_sum))
            else:
                n_sum = n[:, a:b].sum(1, keepdim=True).double() if n is not None else float(b - a)
                out.append(Segment(first, 1, d[:, :, a:b].sum(2).double()[:, None],
                                   q[:, :, a:b].sum(2).double()[:, None], n_sum))
        return out

    def _stretches(self, lo: int, C: int):
        """Split replicates ``[lo, lo + C)`` into a partial head batch, whole batches, a partial tail."""
        hi, m = lo + C, self.m
        head = min(hi, -(-lo // m) * m)
        if head > lo:
            yield lo, head
        body = head + (hi - head) // m * m
        if body > head:
            yield head, body
        if hi > body:
            yield body, hi

    def phi_variance(self) -> torch.Tensor:
        """Per run, the variance of one estimate in each phi coordinate: ``[S, P_phi]``."""
        R = self.batch_n.sum(1, keepdim=True).clamp_min(2)
        mu = self.batch_d.sum(1) / R
        return (self.sum_d2 / R - mu * mu).clamp_min(0) * R / (R - 1)

    def result(self, exact_phi: torch.Tensor | None, *, dtype: torch.dtype, min_se: int = MIN_REPLICATES_FOR_SE,
               min_bias_test: int = MIN_REPLICATES_FOR_BIAS_TEST, moment_warning: str | None = None,
               sampled: bool = True) -> list[tuple[list[dict], list[str]]]:
        """Per run: its rows (one dict per parameter tensor, plus ``total``) and its messages.
        The arithmetic is on small arrays, so it runs in numpy (float64)."""
        batch_d, batch_q, batch_n, sum_d2, sum_d3, sum_d4 = (x.cpu().numpy() for x in (
            self.batch_d, self.batch_q, self.batch_n, self.sum_d2, self.sum_d3, self.sum_d4))
        masks = self.p.masks.cpu().numpy()
        if self.per_coordinate:  # per coordinate -> per row (in numpy: small arrays, as below)
            batch_q = batch_q @ masks
        shift = self.shift.cpu().numpy() if self.shift is not None else np.zeros((self.S, self.p.n_phi))
        J = self.p.J.cpu().numpy() if self.p.J is not None else None
        exact = exact_phi.detach().cpu().double().numpy() if exact_phi is not None else None
        settings = _Settings(masks, dtype, min_se, min_bias_test, moment_warning, sampled)
        return [self._run_result(_RunSums(batch_d[s], batch_q[s], batch_n[s], sum_d2[s], sum_d3[s], sum_d4[s], shift[s],
                                          None if J is None else J[s], None if exact is None else exact[s]), settings)
                for s in range(self.S)]

    def _run_result(self, run: "_RunSums", settings: "_Settings") -> tuple[list[dict], list[str]]:
        batch_d, batch_q, batch_n, sum_d2, sum_d3, sum_d4, shift, J, exact = run
        masks, dtype, min_se, min_bias_test, moment_warning, sampled = settings
        nan = float("nan")
        R = float(batch_n.sum())
        messages = []
        if R < 2:
            rows = [dict(param=row.name, row_kind="total" if row.name == "total" else "parameter", dim=len(row.cols),
                         **{k: None if k == "bias_significant" else nan for k in _ROW_STATISTICS}) for row in self.p.rows]
            return rows, ["fewer than 2 finite estimates: no statistics"]
        to_theta = (lambda v: v @ J) if J is not None else (lambda v: v)
        # Sums over batches as products with ones: numpy's column sums of a small array cost more.
        ones = np.ones(len(batch_n))
        S1 = ones @ batch_d
        Q1 = ones @ batch_q
        mu = S1 / R
        mu_theta = to_theta(mu)
        # Batch means of the variance's influence values psi_t = q_t - 2 (K_t mu)^T d.
        used = batch_n > 0
        B = int(used.sum())
        if B < len(batch_n):  # batches left empty (by non-finite estimates)
            batch_d, batch_q, batch_n = batch_d[used], batch_q[used], batch_n[used]
        weights = batch_n[:, None]
        # (J^T d)^T (mu_theta * mask_t) as d^T (J (mu_theta * mask_t)): a small [P_phi, T] product, not
        # a large one that OpenBLAS's threads would take, then spin on the cores torch needs next.
        K_mu = (J @ (mu_theta[:, None] * masks)) if J is not None else mu_theta[:, None] * masks  # [P_phi, T]
        lags = min(self.lags, max(B - 2, 0))

        def batch_spread(psi):
            """The long-run variance of psi per replicate, from the spread of its batch means and,
            with state, their covariances up to ``lags`` batches apart (never below 0)."""
            level = (batch_n @ (psi / weights)) / R
            deviation = (psi / weights - level) * np.sqrt(weights)  # sqrt(n_b) (psi_b - psi)
            spread = np.einsum("bt,bt->t", deviation, deviation)
            for k in range(1, lags + 1):
                spread = spread + 2 * np.einsum("bt,bt->t", deviation[k:], deviation[:-k])
            return np.maximum(spread / max(B - 1, 1), 0.0)

        spread = batch_spread(batch_q - 2 * (batch_d @ K_mu))  # [T]
        if exact is not None and not np.any(shift - exact):
            # Where the influence about the exact gradient (d is measured from it: psi = q) leaves a first
            # term of the second's order, the estimate's law sits at a stationary point of its variance
            # (DisARM's two values at probability 1/2): the plug-in mean's own noise is then all the
            # plug-in spread holds, so the spread about the exact gradient is taken there.
            variance_now = (Q1 - R * ((mu_theta * mu_theta) @ masks)) / (R - 1)
            about_exact = batch_spread(batch_q)
            spread = np.where(about_exact < 8 * variance_now**2 / R, np.minimum(spread, about_exact), spread)
        # Per phi coordinate: the variance, skewness and (excess) kurtosis of one estimate.
        m2, m3, m4 = sum_d2 / R, sum_d3 / R, sum_d4 / R  # raw moments of d about the shift
        central2 = np.maximum(m2 - mu * mu, 0.0)
        central3 = m3 - 3 * mu * m2 + 2 * mu**3
        central4 = m4 - 4 * mu * m3 + 6 * mu**2 * m2 - 3 * mu**4
        varies = central2 > 1e-150  # beyond it the powers below would underflow
        spread2 = np.where(varies, central2, 1.0)
        skewness = np.where(varies, central3 / spread2**1.5, 0.0)
        kurtosis = np.where(varies, central4 / spread2**2 - 3, 0.0)
        # A coordinate that carries a tenth of the variance or more, with a kurtosis above R / 4: its
        # variance comes from fewer than about 4 rare draws, and no standard error of it can hold.
        share = central2 / max(float(central2.sum()), 1e-300)
        # ... unless its spread is rounding (estimates equal to ROUNDING_ULPS ulps of their size, e.g. a
        # control variate that is the cost itself, cancelling terms of the cost's size times a score):
        # rounding's law is not a tail, and its variance is ~0 anyway.
        size = np.abs(shift + mu) if exact is None else np.maximum(np.abs(shift + mu), np.abs(exact))
        rounding = np.sqrt(central2) <= ROUNDING_ULPS * torch.finfo(dtype).eps * size
        heavy = (share >= 0.1) & (kurtosis > R / HEAVY_TAIL_DRAWS) & ~rounding
        min_batches = MIN_STATE_BATCHES if self.lags else MIN_BATCHES
        se_ok = R >= min_se and B >= min_batches and moment_warning is None and not heavy.any()
        if moment_warning is not None:
            messages.append(moment_warning)
        elif heavy.any():
            messages.append(f"the estimates are heavy-tailed (kurtosis {float(kurtosis[heavy].max()):.3g} at "
                            f"n_replicates={int(R)}): fewer than about {HEAVY_TAIL_DRAWS} rare draws carry the "
                            "variance, so its standard error is left empty (a larger n_replicates gives one)")
        elif R < min_se:
            messages.append(f"n_replicates={int(R)} is below {min_se}: standard errors left empty")
        elif B < min_batches:
            messages.append(f"only {B} batches of {self.m} replicates (the estimator's state links consecutive "
                            f"estimates): standard errors need n_replicates >= {min_batches * self.m}")
        test_ok = R >= min_bias_test
        if exact is not None and not test_ok:
            messages.append(f"n_replicates={int(R)} is below {min_bias_test}, where the bias test holds its "
                            f"{SIGNIFICANCE_LEVEL:.1%} level: bias_significant left empty")
        significant, p_value = (None, nan)
        if exact is not None and test_ok:
            significant, p_value, note = _bias_test(shift + mu - exact, central2 * R / (R - 1), skewness, kurtosis,
                                                    exact, int(R), dtype, sampled)
            if note:
                messages.append(note)
        # Every row at once: a row's dot products are products with its 0/1 mask column.
        T = masks.shape[1]
        variance = (Q1 - R * ((mu_theta * mu_theta) @ masks)) / (R - 1)
        # Never negative: an exact zero (every estimate the same) computed as a difference rounds either way.
        variance = np.where(variance <= 1e-12 * np.maximum(Q1, 0.0) / (R - 1), 0.0, variance)
        if variance[-1] == 0.0:
            messages.append("every estimate is the same: variance 0 exactly, with a standard error of 0" + (
                "; an estimator that samples may have drawn one outcome every time and the others never, so this "
                "sample does not show its variance" if sampled else " (no sampling)"))
        # The batch-means (delta-method) term, plus the second-order term 2 v^2 / (R (R - 1)), exact for
        # iid estimates of one direction: it keeps the standard error honest where the first vanishes
        # (a two-point estimate with probability 1/2, as DisARM's on one bit at p = 1/4).
        variance_se = (np.sqrt(np.maximum(spread, 0.0) / R * (R / (R - 1)) ** 2 + 2 * variance**2 / (R * (R - 1)))
                       .tolist() if se_ok else [nan] * T)
        columns = dict(variance=variance.tolist(), variance_se=variance_se)
        if exact is not None:
            mean_theta = to_theta(shift + mu)
            exact_theta = to_theta(exact)
            off_theta = to_theta(shift - exact)  # e = d + off is an estimate's error
            error = mean_theta - exact_theta
            mse = (Q1 + 2 * ((off_theta * to_theta(S1)) @ masks) + R * ((off_theta * off_theta) @ masks)) / R
            mn, gn = np.sqrt((mean_theta * mean_theta) @ masks), np.sqrt((exact_theta * exact_theta) @ masks)
            cosine = ((mean_theta * exact_theta) @ masks).tolist()
            columns.update(
                bias=np.sqrt((error * error) @ masks).tolist(),
                bias_se=np.sqrt(np.maximum(variance, 0.0) / R).tolist() if se_ok else [nan] * T,
                mse=mse.tolist(), true_grad_norm=gn.tolist(),
                cosine_to_exact=[c / (m * g) if m > 0 and g > 0 else nan for c, m, g in zip(cosine, mn.tolist(), gn.tolist())],
                norm_ratio_to_exact=[m / g if g > 0 else nan for m, g in zip(mn.tolist(), gn.tolist())])
        else:
            columns.update({k: [nan] * T for k in _ROW_STATISTICS if k not in columns})
        columns.update(bias_significant=[significant] * T, bias_p_value=[p_value] * T)
        rows = [dict(param=row.name, row_kind="total" if row.name == "total" else "parameter", dim=len(row.cols),
                     **{k: columns[k][t] for k in _ROW_STATISTICS}) for t, row in enumerate(self.p.rows)]
        if exact is not None:  # components before the total, which stays last
            rows[-1:-1] = self._component_rows(shift + mu, exact, J, mean_theta, exact_theta, significant, p_value)
        return rows, messages

    def _component_rows(self, mean, exact, J, mean_theta, exact_theta, significant, p_value) -> list[dict]:
        """Per named phi component (a prompt): its part of the mean update and of the exact gradient,
        mapped to theta, and their shares of the whole (``<part, whole> / |whole|^2``, summing to 1)."""
        nan = float("nan")
        out = []
        for name, idx in self.p.components.items():
            idx = idx.numpy()
            if J is None:
                g, e = np.zeros_like(mean_theta), np.zeros_like(exact_theta)
                g[idx], e[idx] = mean[idx], exact[idx]
            else:
                g, e = mean[idx] @ J[idx], exact[idx] @ J[idx]
            gn, en = _norm(g), _norm(e)
            out.append(dict(
                param=name, row_kind="component", dim=len(idx), variance=nan, variance_se=nan, bias=_norm(g - e),
                bias_se=nan, bias_significant=significant, bias_p_value=p_value, mse=nan, true_grad_norm=en,
                cosine_to_exact=float(g @ e) / (gn * en) if gn > 0 and en > 0 else nan,
                norm_ratio_to_exact=gn / en if en > 0 else nan,
                update_share=float(g @ mean_theta) / float(mean_theta @ mean_theta) if mean_theta.any() else nan,
                exact_share=float(e @ exact_theta) / float(exact_theta @ exact_theta) if exact_theta.any() else nan))
        return out


def _norm(x: np.ndarray) -> float:
    """The L2 norm of a vector: ``np.linalg.norm``'s own formula, without its overhead."""
    return math.sqrt(float(x.dot(x)))


def _bias_test(bias: np.ndarray, variance: np.ndarray, skewness: np.ndarray, kurtosis: np.ndarray,
               exact: np.ndarray, n: int, dtype, sampled: bool) -> tuple[bool | None, float, str | None]:
    """The job's bias test in phi: ``(significant, p_value, message)``; ``significant`` is ``None``
    (and the message says why) where no coordinate can be tested at this ``n``.

    Two-sided t-tests per coordinate, Bonferroni-combined over the coordinates tested. A coordinate
    is tested when its estimates vary (standard deviation above rounding: ``sqrt(eps) *
    max(|g*_j|, |mean_j|) + 100 eps max_k |g*_k|``) and the two terms of its t statistic's Edgeworth
    expansion (Hall, "The Bootstrap and Edgeworth Expansion", 1992, Sec. 2.6) are small at the
    Bonferroni threshold ``z``, relative to the normal tail: the first, ``|skewness| (2 z^2 + 1)
    M(z) / (6 sqrt(n))`` (one tail; ``M`` the Mills ratio ``phi(z) / (1 - Phi(z))``), at most
    :data:`FIRST_TERM_TOLERANCE`, and the second, ``q2(z) M(z) / n`` with ``q2(z) = z (|kurtosis|
    (z^2 - 3) / 12 + skewness^2 (z^4 + 2 z^2 - 3) / 18 + (z^2 + 3) / 4)`` (both tails; Hall's terms
    with their absolute values), at most :data:`SECOND_TERM_TOLERANCE`. Sparse rewards and rare
    outcomes make some coordinates' estimates so skewed and heavy-tailed that the t test's tail
    there is many times the stated one (a coordinate carried by a few rare draws); a sample that
    happens to miss most of the rare draws can look symmetric, but then its kurtosis is large,
    which is why the kurtosis counts in absolute value. The tolerances were chosen by simulation
    (``bench.calibrate``: the level holds on RLOO with sparse rewards, rare categories and a rare
    bit, and the power on biased estimators stays that of the plain t test). A coordinate that does not vary is compared directly only for an estimator that
    draws no samples (the exact one); for one that does, it is not evidence: its only outcome may
    be the one drawn every time, the others never (a rare category), so it is left out, and said."""
    eps = torch.finfo(dtype).eps
    mean = exact + bias
    tol = math.sqrt(eps) * np.maximum(np.abs(exact), np.abs(mean)) + 100 * eps * float(np.abs(exact).max(initial=0.0))
    se = np.sqrt(variance / n)
    noisy = se * math.sqrt(n) > tol
    quiet_off = ~noisy & (np.abs(bias) > tol)
    if not sampled:
        if quiet_off.any():
            return True, 0.0, None
        noisy = noisy & False  # no sampling: nothing else to test
    notes = []
    if sampled and quiet_off.any():
        notes.append(f"{int(quiet_off.sum())} coordinate(s) of phi did not vary in this sample though their mean "
                     "differs from the exact gradient (an outcome never drawn?): left out of the bias test")
    k_varying = int(noisy.sum())
    z = special.ndtri(1 - SIGNIFICANCE_LEVEL / (2 * max(k_varying, 1)))
    mills = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / special.ndtr(-z)
    first = np.abs(skewness) * (2 * z * z + 1) * mills / (6 * math.sqrt(n))
    q2 = z * (np.abs(kurtosis) * (z * z - 3) / 12 + skewness**2 * (z**4 + 2 * z * z - 3) / 18 + (z * z + 3) / 4)
    second = q2 * mills / n
    tested = noisy & (first <= FIRST_TERM_TOLERANCE) & (second <= SECOND_TERM_TOLERANCE)
    k = int(tested.sum())
    if k < k_varying:  # the first term falls as 1/sqrt(n), the second as 1/n
        needed = n * np.maximum((first / FIRST_TERM_TOLERANCE) ** 2, second / SECOND_TERM_TOLERANCE)[noisy].max()
        notes.append(f"{k_varying - k} of {k_varying} varying coordinate(s) of phi are too skewed or heavy-tailed for "
                     f"the t test at n_replicates={n} (the worst would need about {needed:.2g}): left out of the bias "
                     "test")
    message = "; ".join(notes) or None
    if k == 0:
        if not sampled or not (quiet_off.any() or k_varying):  # every estimate exactly the exact gradient
            return False, 1.0, None
        return None, float("nan"), (message + "; " if message else "") + "no coordinate left to test: " \
            "bias_significant left empty"
    t = np.abs(bias[tested]) / se[tested]
    p = float(min(1.0, k * 2 * special.stdtr(n - 1, -t.max())))  # the t distribution's tail
    return bool(p < SIGNIFICANCE_LEVEL), p, message
