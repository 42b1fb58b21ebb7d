"""RLOO, GRPO and Dr. GRPO against the exact gradient on the sequence policy (the done-when of the
group-baselines issue), and the advantages' formulas and edge cases."""

import math

import pytest
import torch

import bench
from bench.harness import measure_estimates
from bench.presets import build
from bench.problems import make_problem

R = 100_000


@pytest.fixture(scope="module")
def results():
    p = make_problem("sequence_policy")
    return {name: measure_estimates(p, build("estimator", name), n_samples=4, n_replicates=R, seed=0).rows
            for name in ("score_function", "rloo", "dr_grpo", "grpo")}


def _total(rows):
    return next(r for r in rows if r["param"] == "total")


def test_score_function_and_rloo_are_not_flagged(results):
    for name in ("score_function", "rloo"):
        assert _total(results[name])["bias_significant"] is False, name


def test_dr_grpo_costs_magnitude_only(results):
    """With G = 4 the mean-centred advantage includes the sample itself: E = (G-1)/G = 0.75 of the
    exact gradient, in the same direction."""
    t = _total(results["dr_grpo"])
    assert t["bias_significant"] is True and t["cosine_to_exact"] > 0.999
    assert abs(t["norm_ratio_to_exact"] - 0.75) * t["true_grad_norm"] < 4 * t["bias_se"]
    assert abs(t["bias"] - 0.25 * t["true_grad_norm"]) < 4 * t["bias_se"]  # |m - g| = |0.75 g - g| up to noise


def test_grpo_costs_direction(results):
    grpo, dr = _total(results["grpo"]), _total(results["dr_grpo"])
    assert grpo["bias_significant"] is True and grpo["cosine_to_exact"] < dr["cosine_to_exact"] - 0.05


def test_prompt_shares_sum_to_one(results):
    for rows in results.values():
        shares = [r for r in rows if r["row_kind"] == "component"]
        assert len(shares) == 4
        assert sum(r["update_share"] for r in shares) == pytest.approx(1.0, abs=1e-9)
        assert sum(r["exact_share"] for r in shares) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("name", ["rloo", "grpo", "dr_grpo", "grpo_batch_scale"])
def test_all_equal_groups_give_zero_advantage_never_nan(name):
    est = build("estimator", name)
    r = torch.ones(4, 3, 2)  # every group's rewards equal
    assert torch.equal(est.advantages(r, prompt_dims=1), torch.zeros_like(r))
    zero_eps = bench.make_estimator("group_advantage", center="mean", scale="group", eps=0.0)
    a = zero_eps.advantages(torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]]))
    assert torch.isfinite(a).all() and (a[:, 0] == 0).all()


def test_advantage_formulas():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])[:, None]
    loo = bench.make_estimator("group_advantage", center="loo", scale="none", length_norm=False).advantages(r)
    torch.testing.assert_close(loo[:, 0], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))
    mean = bench.make_estimator("group_advantage", center="mean", scale="none", length_norm=False).advantages(r)
    torch.testing.assert_close(mean[:, 0], torch.tensor([0.75, -0.25, -0.25, -0.25]))
    grpo = bench.make_estimator("group_advantage", center="mean", scale="group", eps=0.0).advantages(r)
    torch.testing.assert_close(grpo[:, 0], mean[:, 0] / r.std(0))
    # batch scale: one standard deviation over the group and the prompts of one estimate
    rb = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # [G, prompts]
    batch = bench.make_estimator("group_advantage", scale="batch", eps=0.0).advantages(rb, prompt_dims=1)
    torch.testing.assert_close(batch, (rb - rb.mean(0)) / rb.std())


def test_a_group_of_one_is_refused_in_one_line():
    df = bench.compare("sequence_policy", "grpo", n_samples=1, n_replicates=1000, timing=False)
    assert df["status"].iloc[0] == "invalid_config"
    assert "n_samples=1 is not allowed" in df["message"].iloc[0] and "\n" not in df["message"].iloc[0]


def test_length_norm_needs_sequences():
    with pytest.raises(bench.NotApplicable, match="needs sequence_lengths"):
        bench.measure("gaussian_quadratic", "grpo", n_samples=4, n_replicates=1000)
    assert math.isfinite(bench.measure("gaussian_quadratic", "rloo", n_samples=4, n_replicates=20_000,
                                       timing=False)["variance"].iloc[-1])
