"""The digits VAE: its exact ELBO by enumeration against an independent loop over codes with
torch.distributions' own log_prob and against Monte Carlo, its decoder gradient against finite
differences, the bound on the codes, and training with the decoder and the analytic KL."""

import math

import pytest
import torch

import bench
from bench.problems import make_problem
from bench.problems.digits_vae import binarised_digits
from bench.training import train
from estimators import ConfigError, Sampler, make_estimator

SETTINGS = [{}, {"latent": "categorical", "variables": 3, "classes": 4},
            {"encoder": "mlp", "decoder": "mlp", "hidden": 5, "variables": 4, "n_data": 5}]


def _theta(p):
    return {k: v.unsqueeze(0) for k, v in p.init_params("cpu", torch.float64).items()}


def test_the_data_ship_with_scikit_learn_binarised_and_split_once():
    train_x, test_x = binarised_digits()
    assert train_x.shape == (1437, 64) and test_x.shape == (360, 64)
    assert set(train_x.ravel().tolist()) == {0.0, 1.0}
    assert 0.25 < train_x.mean() < 0.35  # 29 % of the pixels are on


@pytest.mark.parametrize("opts", SETTINGS)
def test_the_enumerated_elbo_matches_a_loop_over_codes_with_log_prob(opts):
    """E_q[f] by two matrix products against sum_z exp(dist.log_prob(z)) f(z), the codes fed one
    by one through the problem's sampled-cost path, and q summing to 1 over the codes."""
    p = make_problem("digits_vae", opts)
    dist = p.distribution(p.encode(_theta(p)))
    exact = p.expected_cost(dist)  # [1, N]
    codes = p.codes(exact)
    if p.latent == "categorical":
        codes = codes.unflatten(-1, (p.variables, p.classes))
    total = torch.zeros_like(exact)
    mass = torch.zeros_like(exact)
    for z in codes:
        zz = z.expand(1, p.n_data, *z.shape)
        q = dist.log_prob(zz).exp()
        total += q * p.cost(zz)
        mass += q
    torch.testing.assert_close(mass, torch.ones_like(mass))
    torch.testing.assert_close(exact, total, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("opts", SETTINGS[:2])
def test_the_exact_objective_matches_monte_carlo(opts):
    p = make_problem("digits_vae", opts)
    dist = p.distribution(p.encode(_theta(p)))
    exact = p.expected_cost(dist)[0]
    f = p.cost(Sampler.seeded(5, "cpu").sample(dist, 100_000))[:, 0]  # [R, N]
    se = f.std(0) / math.sqrt(len(f))
    assert ((f.mean(0) - exact).abs() < 4 * se).all(), ((f.mean(0) - exact) / se)


def test_the_kl_is_the_closed_form_of_its_definition():
    """L log 2 - H(q) for bits, against sum_z q(z) log(q(z) / 2^-L) over the enumerated codes."""
    p = make_problem("digits_vae", {"variables": 3})
    logits = p.encode(_theta(p))["logits"][0]
    log_q = p._log_q(logits, p.codes(logits))  # [N, 8]
    direct = (log_q.exp() * (log_q + 3 * math.log(2))).sum(-1)
    torch.testing.assert_close(p.kl_to_prior(logits), direct)


def test_the_decoder_gradient_matches_finite_differences():
    p = make_problem("digits_vae", SETTINGS[2])
    theta = _theta(p)
    logits = p.encode(theta)["logits"]
    model = {k: v.clone().requires_grad_(True) for k, v in p.model_parameters().items()}
    p.set_model_parameters(model)
    value = p.expected_nll(logits, p.x_train).sum()
    grads = torch.autograd.grad(value, list(model.values()))
    h = 1e-6
    for (name, leaf), g in zip(model.items(), grads):
        for i in (0, leaf.numel() // 2, leaf.numel() - 1):
            with torch.no_grad():
                leaf.view(-1)[i] += h
                up = float(p.expected_nll(logits, p.x_train).sum())
                leaf.view(-1)[i] -= 2 * h
                down = float(p.expected_nll(logits, p.x_train).sum())
                leaf.view(-1)[i] += h
            assert (up - down) / (2 * h) == pytest.approx(float(g.view(-1)[i]), rel=1e-6, abs=1e-7), name


def test_too_many_codes_are_refused_in_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"problem\.variables=15 .*2\^15 codes"):
        make_problem("digits_vae", {"variables": 15})
    with pytest.raises(ConfigError, match=r"problem\.variables=5 .*8\^5 codes"):
        make_problem("digits_vae", {"latent": "categorical", "variables": 5, "classes": 8})


def test_an_unbiased_estimator_is_unbiased_and_a_relaxation_is_flagged():
    rows = bench.compare("digits_vae", ["disarm", "straight_through"], n_samples=2, n_replicates=20_000, seed=3,
                         dtype="float64", timing=False)
    total = rows[rows.param == "total"].set_index("estimator")
    assert total.loc["disarm", "bias_significant"] is False or not total.loc["disarm", "bias_significant"]
    assert total.loc["straight_through", "bias_significant"]


def test_training_moves_the_decoder_adds_the_kl_and_logs_train_and_test_elbo():
    """With the exact estimator every step is the exact gradient of the whole negative ELBO (the KL
    included): the logged gradient error is 0; the ELBO rises; each run has its own decoder."""
    p = make_problem("digits_vae", {"variables": 4, "n_data": 16})
    before = {k: v.clone() for k, v in p.model_parameters().items()}
    out = train(p, make_estimator("exact"), {"name": "adam", "lr": 0.05}, n_samples=1, steps=30, n_seeds=2,
                log_every=10, dtype=torch.float64)
    c = out.curves
    assert {"metric.train_elbo", "metric.test_elbo"} <= set(c.columns)
    assert c[c.step > 0].grad_sq_error.max() < 1e-20
    first, last = c[c.step == 0], c[c.step == 30]
    assert (last["metric.train_elbo"].to_numpy() > first["metric.train_elbo"].to_numpy() + 1).all()
    torch.testing.assert_close(-c["objective"].to_numpy() / 16, c["metric.train_elbo"].to_numpy(), check_dtype=False)
    for k, v in p.model_parameters().items():  # the problem given is untouched (training works on a copy)
        torch.testing.assert_close(v, before[k])
    noisy = train(p, make_estimator("disarm"), {"name": "adam", "lr": 0.05}, n_samples=1, steps=5, n_seeds=2,
                  log_every=5, dtype=torch.float64)
    end = noisy.curves[noisy.curves.step == 5]
    assert end["objective"].nunique() == 2  # two runs, two noise streams, two decoders
