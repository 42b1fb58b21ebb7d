"""The sequence policy: every completion enumerated (probabilities sum to 1 per prompt), the exact
objective against Monte Carlo and its gradient against finite differences, prompts of different
difficulty, lengths offered to estimators."""

import pytest
import torch

from bench.problems import make_problem
from tests.helpers import exact_and_finite_difference
from bench.problems.sequence import END, all_completions
from estimators import Sampler, capabilities


@pytest.mark.parametrize("opts", [{}, {"reward": "match"}, {"n_prompts": 2, "vocab": 3, "max_length": 3, "init_seed": 4}])
def test_enumeration_sums_to_one_and_matches_monte_carlo(opts):
    p = make_problem("sequence_policy", opts)
    dist = p.distribution(p.encode(p.init_params("cpu", torch.float64)))
    q = dist.log_prob(p.completions[:, None, :]).exp()  # [M, P]
    torch.testing.assert_close(q.sum(0), torch.ones(p.n_prompts, dtype=torch.float64))
    exact = p.expected_cost(dist)
    R = 200_000
    r = p.cost(Sampler.seeded(1, "cpu").sample(dist, R)).double()
    se = r.std(0) / R**0.5
    assert ((r.mean(0) - exact).abs() < 4 * se).all(), (r.mean(0), exact)


def test_completions_are_every_sequence_once():
    words = all_completions(4, 5)
    assert len(words) == sum(3**t for t in range(5)) + 3**5 == 364
    assert len({tuple(w) for w in words.tolist()}) == 364
    for w in words.tolist():  # padding only after the end token
        if END in w:
            assert all(t == END for t in w[w.index(END):])


def test_prompts_differ_in_difficulty():
    success = make_problem("sequence_policy").info()["success_at_theta0"]
    assert success[0] == pytest.approx(0.05, abs=0.01) and success[-1] == pytest.approx(0.9, abs=0.01)
    assert success == sorted(success)


def test_exact_gradient_matches_finite_differences():
    p = make_problem("sequence_policy", {"n_prompts": 2, "vocab": 3, "max_length": 3})
    theta = {k: v.unsqueeze(0) for k, v in p.init_params("cpu", torch.float64).items()}
    exact, fd = exact_and_finite_difference(p, theta)
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=1e-8)


def test_lengths_are_offered_and_count_the_end_token():
    p = make_problem("sequence_policy")
    dist = p.distribution(p.encode(p.init_params("cpu", torch.float32)))
    assert "sequence_lengths" in capabilities(dist)
    x = torch.tensor([[0, 0, 0, 0, 0], [2, 0, 0, 0, 0], [1, 2, 3, 1, 2]])
    assert dist.sequence_lengths(x).tolist() == [1, 2, 5]


@pytest.mark.parametrize("reward", ["verifier", "match"])
def test_the_length_penalty_is_the_expected_length_scaled(reward):
    """E[r - c l / L] = E[r] - c E[l] / L, the expected length summed over the completions with the
    distribution's own log_prob (not the enumeration's index tables), and the sampled cost agrees."""
    plain = make_problem("sequence_policy", vocab=3, max_length=10, reward=reward)
    penalised = make_problem("sequence_policy", vocab=3, max_length=10, reward=reward, length_penalty=0.2)
    dist = plain.distribution(plain.encode(plain.init_params("cpu", torch.float64)))
    words = plain.completions[:, None, :]  # [M, 1, L] against [P] prompts
    q = dist.log_prob(words).exp()  # [M, P]
    expected_length = (q * dist.sequence_lengths(words).double()).sum(0)
    torch.testing.assert_close(penalised.expected_cost(dist), plain.expected_cost(dist) - 0.2 * expected_length / 10,
                               rtol=1e-12, atol=1e-12)
    x = dist.sample((50,))
    torch.testing.assert_close(penalised.cost(x).double(),
                               plain.cost(x).double() - 0.2 * dist.sequence_lengths(x).double() / 10)


def test_longer_completions_stay_enumerable_and_a_larger_table_is_one_line():
    p = make_problem("sequence_policy", vocab=3, max_length=10)
    assert len(p.completions) == sum(2**t for t in range(10)) + 2**10 == 2047
    with pytest.raises(ValueError, match=r"problem.max_length=10 is not allowed: with problem.vocab=5"):
        make_problem("sequence_policy", vocab=5, max_length=10)


@pytest.mark.parametrize("opts", [{}, {"vocab": 3, "max_length": 10, "length_penalty": 0.2}])
def test_curve_metrics_match_monte_carlo(opts):
    """The exact mean completion length and success probability (what training logs) against the
    mean over 100,000 sampled completions, within 4 standard errors; success is the expected reward
    where no length penalty applies."""
    p = make_problem("sequence_policy", opts)
    dist = p.distribution(p.encode(p.init_params("cpu", torch.float64)))
    metrics = p.curve_metrics(dist)
    x = Sampler.seeded(2, "cpu").sample(dist, 100_000)
    sampled = {"mean_length": dist.sequence_lengths(x).double(),
               "success": p.cost(x).double() + p.length_penalty * dist.sequence_lengths(x).double() / p.max_length}
    for name, values in sampled.items():
        se = values.std(0) / len(values) ** 0.5
        assert ((values.mean(0) - metrics[name]).abs() < 4 * se).all(), (name, values.mean(0), metrics[name])
    if not p.length_penalty:
        torch.testing.assert_close(metrics["success"], p.expected_cost(dist))
    assert "success" not in make_problem("sequence_policy", {"reward": "match"}).curve_metrics(dist)


def test_kl_regularised_objective_against_monte_carlo_and_finite_differences():
    """E[r] - beta KL(q || pi_ref) by enumeration against the mean of r - beta log(q / pi_ref) over
    sampled completions (within 4 standard errors), its gradient against central differences, and
    the KL metric positive, zero for pi_ref = q (ref_seed = init_seed)."""
    p = make_problem("sequence_policy", {"kl_beta": 0.3, "ref_seed": 5})
    dist = p.distribution(p.encode(p.init_params("cpu", torch.float64)))
    assert "reference_policy" in capabilities(dist)
    x = Sampler.seeded(3, "cpu").sample(dist, 100_000)
    log_ratio = (dist.token_log_prob(x) - dist.reference_token_log_prob(x)).sum(-1)
    values = p.cost(x).double() - 0.3 * log_ratio.detach()
    se = values.std(0) / len(values) ** 0.5
    exact = p.expected_cost(dist)
    assert ((values.mean(0) - exact).abs() < 4 * se).all(), (values.mean(0), exact)
    assert (p.curve_metrics(dist)["kl"] > 0).all()
    same = make_problem("sequence_policy", {"kl_beta": 0.3, "ref_seed": 0})
    torch.testing.assert_close(same.curve_metrics(same.distribution(same.encode(same.init_params("cpu", torch.float64))))["kl"],
                               torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
    small = make_problem("sequence_policy", {"n_prompts": 2, "vocab": 3, "max_length": 3, "kl_beta": 0.5})
    theta = {k: v.unsqueeze(0) for k, v in small.init_params("cpu", torch.float64).items()}
    grad, fd = exact_and_finite_difference(small, theta)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)
    plain = make_problem("sequence_policy")
    assert "reference_policy" not in capabilities(plain.distribution(plain.encode(plain.init_params("cpu", torch.float64))))


def test_behaviour_steps_make_pi_old_the_policy_k_adam_steps_earlier():
    """behaviour_steps=1: Adam's first step moves every weight by lr g / (|g| + eps) (its bias-
    corrected m and sqrt(v) are g and |g|; eps = 1e-8), g the exact objective's gradient, so theta0 is
    the initialisation moved up it; pi_old's logits are the initialisation's; more steps raise the
    objective."""
    plain = make_problem("sequence_policy")
    start = plain.init_params("cpu", torch.float64)
    theta = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    grads = torch.autograd.grad(plain.expected_cost(plain.distribution(plain.encode(theta))).sum(), list(theta.values()))
    one = make_problem("sequence_policy", behaviour_steps=1, behaviour_lr=0.01)
    moved = one.init_params("cpu", torch.float64)
    for (k, v), g in zip(start.items(), grads):
        torch.testing.assert_close(moved[k], v + 0.01 * g / (g.abs() + 1e-8), rtol=0, atol=1e-12, msg=k)
    old = one.distribution(one.encode(moved)).behaviour()
    torch.testing.assert_close(old.logits, plain.encode(start)["logits"], rtol=0, atol=1e-12)
    values = [float(p.expected_cost(p.distribution(p.encode(p.init_params("cpu", torch.float64)))).sum())
              for p in (plain, one, make_problem("sequence_policy", behaviour_steps=8))]
    assert values == sorted(values) and values[0] < values[-1]
