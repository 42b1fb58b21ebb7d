"""An estimator in your own training loop: a distribution and a plain cost function in, a
surrogate loss out, with no harness objects."""

import pytest
import torch

import bench
from estimators.score_function import EMAState


def test_reinforce_policy_loop_learns_the_target():
    torch.manual_seed(0)
    mu = torch.zeros((), requires_grad=True)
    log_std = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.Adam([mu, log_std], lr=0.05)
    estimator = bench.make_estimator("score_function_baseline", baseline="ema")
    state = estimator.init_state()
    for _ in range(400):
        dist = torch.distributions.Normal(mu, log_std.exp())
        loss = estimator(dist, lambda a: (3.0 - a) ** 2, n_samples=8, state=state)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert abs(mu.item() - 3.0) < 0.3 and log_std.exp().item() < 0.5
    assert isinstance(state, EMAState) and float(state.baseline) < 1.0


def test_the_loss_gradient_is_the_estimate_and_the_global_generator_is_used():
    mu = torch.tensor(1.0, requires_grad=True)
    estimator = bench.make_estimator("reparameterization")
    torch.manual_seed(5)
    estimator(torch.distributions.Normal(mu, 1.0), lambda x: x**2, n_samples=4).backward()
    torch.manual_seed(5)
    eps = torch.randn(4)  # the noise the estimator drew from torch's global generator
    torch.testing.assert_close(mu.grad, (2 * (1.0 + eps)).mean())


def test_a_batch_of_independent_distributions_gives_one_loss_each():
    logits = torch.zeros(5, 3, requires_grad=True)
    dist = torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 1)
    loss = bench.make_estimator("disarm")(dist, lambda b: b.sum(-1), n_samples=2, generator=torch.Generator().manual_seed(0))
    assert loss.shape == (5,)
    loss.sum().backward()
    assert logits.grad.shape == (5, 3)


def test_optimal_baseline_finds_the_distribution_parameters_itself():
    loc = torch.zeros(3, requires_grad=True)
    dist = torch.distributions.Independent(torch.distributions.Normal(loc, torch.ones(3)), 1)
    est = bench.make_estimator("score_function_baseline", baseline="optimal")
    est(dist, lambda x: (x**2).sum(-1), n_samples=4).backward()
    assert torch.isfinite(loc.grad).all()


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(dist=None), TypeError, "dist must be a torch.distributions.Distribution"),
    (dict(cost=3), TypeError, "cost must be callable"),
    (dict(n_samples=0), ValueError, "n_samples=0"),
    (dict(generator="seed"), TypeError, "generator must be a torch.Generator"),
])
def test_wrong_arguments(kwargs, error, match):
    args = dict(dist=torch.distributions.Normal(torch.zeros(()), 1.0), cost=lambda x: x, n_samples=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        bench.make_estimator("score_function")(args.pop("dist"), args.pop("cost"), **args)


def test_a_stateful_estimator_asks_for_its_state():
    with pytest.raises(ValueError, match=r"state = estimator.init_state\(\)"):
        bench.make_estimator("score_function_baseline")(torch.distributions.Normal(0.0, 1.0), lambda x: x)


def test_an_inapplicable_distribution_is_refused_with_the_reason():
    with pytest.raises(bench.NotApplicable, match="arm applies to bernoulli"):
        bench.make_estimator("arm")(torch.distributions.Normal(torch.zeros(()), 1.0), lambda x: x)
