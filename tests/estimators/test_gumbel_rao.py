"""Gumbel-Rao: its conditional noise has the right law, its expectation is straight-through's and its
variance is smaller (Paulus et al. 2021)."""

import math

import pytest
import torch

import bench
from estimators import Sampler
from estimators.relaxed import conditional_relaxed


def test_conditional_gumbels_keep_the_argmax_and_the_gumbel_marginal():
    """Given b = argmax(logits + g), the conditional g keeps b the argmax; drawn with b from its own
    law, each g_j is standard Gumbel (mean Euler's gamma, variance pi^2 / 6)."""
    logits = torch.tensor([1.0, -0.5, 0.3, 2.0], dtype=torch.float64)
    dist = torch.distributions.OneHotCategorical(logits=logits)
    sampler = Sampler.seeded(4, "cpu")
    hard = sampler.sample(dist, 200_000)  # [n, 4]
    soft = conditional_relaxed(dist, hard, sampler, 1, 1e-9)[0]  # T -> 0: the argmax of logits + g
    assert torch.equal(soft.round(), hard)
    # The noise itself: invert softmax at T = 1 (log of the relaxation, shifted so the mean matches).
    g = torch.log(conditional_relaxed(dist, hard, sampler, 1, 1.0)[0]) - logits
    diffs = (g[:, 1:] - g[:, :1])  # the softmax's shift cancels in differences of g
    assert diffs.mean(0).abs().max() < 4 * diffs.std(0).max() / math.sqrt(len(g))
    assert diffs.var(0).sub(math.pi**2 / 3).abs().max() < 0.05  # Gumbel minus Gumbel: variance pi^2/3


@pytest.mark.parametrize("problem", ["bernoulli_toy", "categorical_bandit"])
def test_the_expectation_is_straight_throughs_and_the_variance_smaller(problem):
    R = 100_000
    rows = bench.compare(problem, ["straight_through", "gumbel_rao"], n_samples=1, n_replicates=R, seed=7,
                         dtype="float64", timing=False)
    total = rows[rows.param == "total"].set_index("estimator")
    st, gr = total.loc["straight_through"], total.loc["gumbel_rao"]
    assert gr.variance < st.variance
    # Paired on the hard samples (the same seed draws the same b), the two estimates differ by
    # zero-mean noise: their mean difference is within 4 standard errors of 0.
    gr_e = bench.estimates(problem, "gumbel_rao", n_samples=1, n_replicates=R, seed=7, dtype="float64").to_numpy()
    st_e = bench.estimates(problem, "straight_through", n_samples=1, n_replicates=R, seed=7,
                           dtype="float64").to_numpy()
    diff = gr_e - st_e
    mean, se = diff.mean(0), diff.std(0) / math.sqrt(R)
    assert (abs(mean) <= 4 * se).all(), (mean, se)
