"""The IWAE bound on the linear-Gaussian model (bench.iwae): its exact value and gradient by the
nested quadrature against the closed-form ELBO (K = 1) and Monte Carlo (K > 1), the estimators'
known properties (unbiased pathwise and DReG, biased STL, zero variance at the posterior), and the
calibration of the bias test and of the SNR's standard error."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from bench.iwae import ESTIMATORS, POSTERIOR, THETA, LinearGaussian, bias_test, markdown, summarise, table

MODEL = LinearGaussian(8)


def test_the_quadrature_is_the_closed_form_elbo_at_k_1():
    theta = torch.tensor(THETA, dtype=torch.float64, requires_grad=True)
    closed = MODEL.elbo(theta)
    torch.testing.assert_close(MODEL.exact_bound(theta.detach(), 1), closed.detach(), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(MODEL.exact_gradient(THETA, 1), torch.autograd.grad(closed, theta)[0],
                               rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("K", [3, 32])
def test_the_exact_bound_matches_monte_carlo(K):
    """Independently: torch.distributions' log densities, R = 1e5 draws of K samples per point."""
    theta = torch.tensor(THETA, dtype=torch.float64)
    mu, log_sd = MODEL.encoder(theta)
    g = torch.Generator().manual_seed(K)
    z = mu[:, None] + log_sd.exp() * torch.randn(100_000, MODEL.n_data, K, generator=g, dtype=torch.float64)
    log_w = (Normal(0.0, 1.0).log_prob(z) + Normal(z, 1.0).log_prob(MODEL.x[:, None])
             - Normal(mu[:, None], log_sd.exp()).log_prob(z))
    values = (torch.logsumexp(log_w, -1) - math.log(K)).sum(-1)
    se = float(values.std() / math.sqrt(len(values)))
    assert abs(float(values.mean()) - float(MODEL.exact_bound(theta, K))) < 4 * se
    # the bound rises with K towards log p(x)
    bounds = [float(MODEL.exact_bound(theta, k)) for k in (1, K, 1024)]
    assert bounds == sorted(bounds) and bounds[-1] < float(MODEL.log_evidence().sum())


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_pathwise_and_dreg_are_unbiased_and_stl_is_not(estimator):
    rows = summarise(MODEL, estimator, THETA, 8, 20_000, seed=1)
    p = rows[-1]["bias_p_value"]
    assert (p < 0.001) == (estimator == "stl"), p


def test_at_the_posterior_stl_and_dreg_have_zero_variance_and_the_gradient_is_zero():
    assert float(MODEL.exact_gradient(POSTERIOR, 8).abs().max()) < 1e-12
    for estimator in ESTIMATORS:
        g = MODEL.estimates(estimator, POSTERIOR, 8, 2000, torch.Generator().manual_seed(0))
        var = float(g.var(0).sum())
        assert (var < 1e-20) if estimator != "iwae" else (var > 0.1), (estimator, var)


def test_the_bias_test_holds_its_level_and_the_snr_se_its_spread():
    """200 seeds of R = 500 pathwise estimates at K = 4: the bias test (level 5 %) rejects 2-8.5 %
    of them (binomial, 5 % +- 2.3 sd); the jackknife SE of the SNR is the SNR's spread over seeds
    within 20 %."""
    exact = MODEL.exact_gradient(THETA, 4)
    gen = torch.Generator().manual_seed(7)
    ps, snrs, ses = [], [], []
    for _ in range(200):
        g = MODEL.estimates("iwae", THETA, 4, 500, gen).numpy()
        ps.append(bias_test(g, exact.numpy()))
    assert 0.02 <= np.mean(np.array(ps) < 0.05) <= 0.085, np.mean(np.array(ps) < 0.05)
    for seed in range(100):
        rows = summarise(MODEL, "dreg", THETA, 4, 1000, seed=seed, exact=exact)
        snrs.append(rows[0]["snr"])
        ses.append(rows[0]["snr_se"])
    ratio = np.std(snrs, ddof=1) / np.sqrt(np.mean(np.square(ses)))
    assert 0.8 < ratio < 1.25, ratio


def test_the_table_has_every_estimator_and_k_and_its_markdown_reads():
    df = table(2000, Ks=(1, 2, 4))
    assert set(df["estimator"]) == set(ESTIMATORS) and sorted(df["K"].unique()) == [1, 2, 4]
    text = markdown(df)
    assert "SNR a" in text and "slope" in text
