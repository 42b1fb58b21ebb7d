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
