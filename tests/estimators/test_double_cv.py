"""The double control variate (Titsias & Shi 2022): RLOO at alpha = 0, exact where f is linear in
the one-hot or binary x, unbiased with a nonlinear f (also in the generic tests), and its variance
against RLOO's on the digits VAE, where the decoder's log-likelihood is close to linear in the code."""

import numpy as np
import torch

import bench

VAE = {"name": "digits_vae", "variables": 12, "n_data": 16}


def test_alpha_zero_is_rloo_estimate_for_estimate():
    for problem in ("bernoulli_toy", VAE):
        ours = bench.estimates(problem, {"name": "double_cv", "alpha": 0.0}, n_samples=3, n_replicates=50, seed=2,
                               dtype=torch.float64)
        rloo = bench.estimates(problem, "score_function_loo", n_samples=3, n_replicates=50, seed=2, dtype=torch.float64)
        np.testing.assert_allclose(ours.to_numpy(), rloo.to_numpy(), rtol=1e-10, atol=1e-12)


def test_a_cost_linear_in_the_one_hot_sample_gets_the_exact_gradient():
    """categorical_bandit's reward is a table lookup, r^T x: the Taylor term is f's deviation from its
    mean, every advantage is 0 and the last term is the gradient itself."""
    df = bench.measure("categorical_bandit", "double_cv", n_samples=2, n_replicates=500, timing=False,
                       dtype=torch.float64)
    total = df[df["param"] == "total"].iloc[0]
    assert total["variance"] < 1e-20
    assert abs(total["norm_ratio_to_exact"] - 1) < 1e-10


def test_unbiased_on_the_vae_and_lower_variance_than_rloo():
    """R = 5000 at n = 2 (seed 0): not flagged, and its variance below RLOO's by more than 4 SE each."""
    rows = {}
    for estimator in ("double_cv", "score_function_loo"):
        df = bench.measure(VAE, estimator, n_samples=2, n_replicates=5000, timing=False)
        rows[estimator] = df[df["param"] == "total"].iloc[0]
    dcv, rloo = rows["double_cv"], rows["score_function_loo"]
    assert not bool(dcv["bias_significant"])
    assert dcv["variance"] + 4 * dcv["variance_se"] < rloo["variance"] - 4 * rloo["variance_se"]
