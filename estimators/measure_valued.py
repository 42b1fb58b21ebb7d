"""The measure-valued gradient estimator for Gaussian distributions."""

from __future__ import annotations

import math

import torch

from .base import Estimator, base_distribution, linear_surrogate, mean_over_samples
from .options import flag
from .registry import register


@register
class MeasureValued(Estimator):
    r"""Measure-valued derivatives of a Gaussian (unbiased), one coordinate at a time.

    For :math:`x \sim N(\mu, \sigma^2)` per coordinate, with the other coordinates at their sample:

    .. math:: \partial_\mu E f = \frac{1}{\sigma\sqrt{2\pi}}\,
              E\big[f(\mu + \sigma W) - f(\mu - \sigma W')\big], \quad W, W' \sim \mathrm{Weibull}(\sqrt2, 2)

    .. math:: \partial_\sigma E f = \frac1\sigma\,
              E\big[f(\mu + \sigma M) - f(\mu + \sigma \epsilon)\big], \quad
              M \sim \text{double-sided Maxwell}, \ \epsilon \sim N(0, 1)

    ``coupling=true`` uses common random numbers: :math:`W' = W`, and :math:`\epsilon = M U` with
    :math:`U \sim U(0,1)` (the product of a double-sided Maxwell and a uniform is standard normal);
    ``coupling=false`` draws them independently. Two evaluations of f per parameter coordinate and
    sample. When the cost is separable (``f = sum_j f1(x_j)``, offered by the problem as
    ``Cost.elementwise``), the difference of the two evaluations is ``f1(a) - f1(b)``: computed so,
    without rebuilding x once per coordinate (the same numbers, in O(dim) instead of O(dim^2));
    a problem that can evaluate f with one coordinate replaced faster (``Cost.coordinate_replaced``,
    e.g. a rank-one update of a linear model) is used likewise. (Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020, Section 6 and Table 1; Pflug 1989.)
    """

    name = "measure_valued"
    summary = "Weibull (mean) and double-sided Maxwell (scale) derivatives, one coordinate at a time (Mohamed et al. 2020, Sec. 6)"
    families = frozenset({"gaussian"})

    options_spec = {"coupling": flag(True, "common random numbers for the two sides")}

    def evals_per_estimate(self, n_samples, dist=None):
        coords = 1 if dist is None else max(1, math.prod(dist.event_shape))
        return n_samples * 2 * 2 * coords  # (mu, sigma) x (two sides) per coordinate

    def elements_per_sample(self, dist, cost=None):
        coords = max(1, math.prod(dist.event_shape))
        if cost is not None and cost.elementwise is not None:
            return 16 * coords  # the noise and the four perturbed values per coordinate
        if cost is not None and cost.coordinate_replaced is not None:
            return 16 * coords * 64  # the problem's own per-coordinate work, assumed moderate
        return 4 * coords * coords  # four copies of x with one coordinate replaced, per coordinate

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        normal = base_distribution(dist)
        loc, scale = normal.loc, normal.scale
        event = dist.event_shape
        separable = cost.elementwise is not None and len(event) > 0
        with torch.no_grad():
            shape = sampler.full_shape(dist, n_samples)  # [n, *batch, *event]
            # x, the other coordinates' sample, cancels in the difference when the cost is separable.
            x = None if separable else sampler.sample(dist, n_samples)
            w = torch.sqrt(-2 * torch.log(sampler.uniform(shape, loc)))  # Weibull(sqrt 2, 2)
            w_neg = w if self.coupling else torch.sqrt(-2 * torch.log(sampler.uniform(shape, loc)))
            # Double-sided Maxwell: |M| is chi with 3 degrees of freedom, chi2_3 = Z^2 + chi2_2 with
            # chi2_2 = -2 log U, and the sign of Z is independent of |Z| (one normal and one uniform).
            z = sampler.normal(shape, loc)
            chi3 = (z * z - 2 * torch.log(sampler.uniform(shape, loc))).sqrt()
            maxwell = torch.where(z < 0, -chi3, chi3)
            eps = maxwell * sampler.uniform(shape, loc) if self.coupling else sampler.normal(shape, loc)
            m, s = loc.detach(), scale.detach()
            g_mu = self._difference(cost, x, m + s * w, m - s * w_neg, event)
            g_mu = mean_over_samples(g_mu) / (s * math.sqrt(2 * math.pi))
            g_sigma = self._difference(cost, x, m + s * maxwell, m + s * eps, event)
            g_sigma = mean_over_samples(g_sigma) / s
        return linear_surrogate([(g_mu, loc), (g_sigma, scale)], len(dist.batch_shape))

    @classmethod
    def _difference(cls, cost, x, a, b, event) -> torch.Tensor:
        """``f(x_{-j}, a_j) - f(x_{-j}, b_j)`` for every coordinate j: ``[n, *batch, *event]``."""
        if cost.elementwise is not None and len(event) > 0:
            return cost.elementwise(a) - cost.elementwise(b)
        if cost.coordinate_replaced is not None and len(event) == 1:
            return cost.coordinate_replaced(x, a) - cost.coordinate_replaced(x, b)
        return cls._perturbed(cost, x, a, event) - cls._perturbed(cost, x, b, event)

    @staticmethod
    def _perturbed(cost, x, values, event) -> torch.Tensor:
        """``f`` with one coordinate of ``x`` replaced by ``values`` (same shape as ``x``), for
        every coordinate: ``[n, R, *event]``."""
        if len(event) == 0:
            return cost(values)
        n_coords = math.prod(event)
        lead = x.shape[: x.dim() - len(event)]
        flat = x.reshape(*lead, n_coords)
        grid = flat.unsqueeze(-2).repeat(*([1] * len(lead)), n_coords, 1)  # [..., coord, n_coords]
        torch.diagonal(grid, dim1=-2, dim2=-1).copy_(values.reshape(*lead, n_coords))
        return cost(grid.reshape(*lead, n_coords, *event)).reshape(*lead, *event)
