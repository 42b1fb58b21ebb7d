"""Antithetic and randomised quasi-Monte Carlo sampling (the job's ``sampling`` key): the draws'
structure, each sample's exact law, the variance's rate in n, and the bias they bring to baselines
made of the other samples."""

import math

import numpy as np
import pytest
import torch

import bench
from estimators import ConfigError, Sampler


def test_antithetic_pairs_mirror_the_first_half():
    s = Sampler.seeded(1, "cpu", "antithetic")
    like = torch.zeros((), dtype=torch.float64)
    eps = s.normal((5, 3, 2), like)
    torch.testing.assert_close(eps[2:4], -eps[0:2])
    u = s.uniform((4, 7), like)
    torch.testing.assert_close(u[2:], 1 - u[:2])


def test_rqmc_points_are_stratified_per_estimate_and_uniform_across_estimates():
    """n = 16 one-dimensional points per estimate: one in each interval [k/16, (k+1)/16) (a
    digitally shifted Sobol set keeps that), and over 4000 estimates each point is U(0, 1)."""
    s = Sampler.seeded(2, "cpu", "rqmc")
    u = s.uniform((16, 4000), torch.zeros((), dtype=torch.float64))  # [n, estimates]
    cells = torch.sort((u * 16).floor(), dim=0).values
    assert torch.equal(cells, torch.arange(16, dtype=torch.float64)[:, None].expand(16, 4000))
    se = math.sqrt(1 / 12 / 4000)
    assert (u.mean(1) - 0.5).abs().max() < 4.5 * se


def test_rqmc_takes_a_samples_event_as_one_point():
    """For a 3-dimensional event, the 8 samples of one estimate are 8 points of a 3-dimensional set:
    their projection on each coordinate is stratified too."""
    s = Sampler.seeded(3, "cpu", "rqmc")
    dist = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(50, 3, dtype=torch.float64), 1.0), 1)
    x = s.sample(dist, 8)  # [8, 50, 3]
    u = torch.distributions.Normal(0.0, 1.0).cdf(x)
    cells = torch.sort((u * 8).floor(), dim=0).values
    assert torch.equal(cells, torch.arange(8, dtype=torch.float64)[:, None, None].expand(8, 50, 3))


def _variances(estimator, mode, ns=(4, 16, 64)):
    out = []
    for n in ns:
        rows = bench.measure("gaussian_cosine", estimator, n_samples=n, n_replicates=20_000, seed=4, timing=False,
                             sampling=mode, dtype="float64")
        out.append(rows[rows.param == "total"].iloc[0])
    return out


def test_rqmc_stays_unbiased_and_its_variance_falls_faster_than_one_over_n():
    """Measured: slope -2.03 for the pathwise estimator on gaussian_cosine, n = 2 to 64 (iid: -1.00)."""
    rows = _variances("reparameterization", "rqmc")
    assert not any(r.bias_significant for r in rows)
    slope = np.polyfit(np.log([4, 16, 64]), np.log([r.variance for r in rows]), 1)[0]
    assert slope < -1.5, slope


def test_a_leave_one_out_baseline_is_biased_by_antithetic_pairs():
    """The other samples include the sample's mirror image: the baseline is no longer independent
    of the sample it is applied to, and the bias test sees it (n = 64)."""
    rows = bench.measure("gaussian_cosine", "score_function_loo", n_samples=64, n_replicates=20_000, seed=1,
                         timing=False, sampling="antithetic", dtype="float64")
    assert rows[rows.param == "total"].iloc[0].bias_significant


def test_bad_sampling_values_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"sampling='sobol' is not allowed"):
        bench.measure("gaussian_cosine", "score_function", n_samples=4, n_replicates=100, sampling="sobol")
    with pytest.raises(ConfigError, match=r"compile=True"):
        bench.measure("gaussian_cosine", "score_function", n_samples=4, n_replicates=100, sampling="rqmc",
                      compile=True)
