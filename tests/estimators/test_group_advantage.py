"""The group estimators on the sequence policy: RLOO, GRPO and Dr. GRPO against the exact gradient,
the advantages' formulas and edge cases, every aggregation against a trainer's loss, micro-batching,
GRPO's std conventions, the advantage estimators, the KL terms and the off-policy losses."""

import math

import numpy as np
import pytest
import torch

import bench
from bench.harness import measure_estimates
from bench.presets import build
from bench.problems import make_problem
from estimators.sampling import Sampler

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
    loo = bench.make_estimator("group_advantage", center="loo", scale="none", aggregation="seq_mean_token_sum").advantages(r)
    torch.testing.assert_close(loo[:, 0], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))
    mean = bench.make_estimator("group_advantage", center="mean", scale="none", aggregation="seq_mean_token_sum").advantages(r)
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


def test_token_aggregations_need_sequences():
    with pytest.raises(bench.NotApplicable, match="needs sequence_lengths"):
        bench.measure("gaussian_quadratic", "grpo", n_samples=4, n_replicates=1000)
    assert math.isfinite(bench.measure("gaussian_quadratic", "rloo", n_samples=4, n_replicates=20_000,
                                       timing=False)["variance"].iloc[-1])


# --- The aggregations against a trainer's loss, written token by token -------------------------------

AGG = ("seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm", "token_mean",
       "token_mean_microbatch", "token_sum")


def _trainer_gradient(problem, logits, x, advantages, mode, K):
    """What a trainer computes: the batch of N = P G completions flattened prompt by prompt (each
    prompt's group together), a loss matrix of per-token A log pi, cut into K consecutive micro-batches,
    each aggregated by ``mode`` and its loss divided by K before backward (gradient accumulation)."""
    dist = problem.distribution({"logits": logits})
    step_logits, _ = dist._step_logits(x)  # [G, P, L, V]
    token_logp = torch.log_softmax(step_logits, -1).gather(-1, x[..., None]).squeeze(-1)  # [G, P, L]
    mask = dist.alive(x).to(token_logp.dtype)
    flat = lambda t: t.transpose(0, 1).reshape(-1, *t.shape[2:])  # noqa: E731  [G, P, ...] -> [P G, ...]
    loss_mat, mask, adv = flat(token_logp), flat(mask), flat(advantages)
    loss_mat = adv[:, None] * loss_mat
    L = x.shape[-1]
    total = 0.0
    for lm, m in zip(loss_mat.chunk(K), mask.chunk(K)):
        if mode == "token_sum":
            loss = (lm * m).sum()
        elif mode == "token_mean_microbatch":
            loss = (lm * m).sum() / m.sum()
        elif mode == "token_mean":  # over the global batch's tokens
            loss = (lm * m).sum() / mask.sum() * K
        elif mode == "seq_mean_token_sum":
            loss = (lm * m).sum(-1).mean()
        elif mode == "seq_mean_token_mean":
            loss = ((lm * m).sum(-1) / m.sum(-1)).mean()
        else:  # seq_mean_token_sum_norm
            loss = ((lm * m).sum(-1) / L).mean()
        total = total + loss / K
    return torch.autograd.grad(total, logits)[0]


@pytest.mark.parametrize("mode", AGG)
@pytest.mark.parametrize("K", [1, 2, 4])
def test_each_aggregation_is_the_trainers_loss(mode, K):
    """The estimator's gradient is P times the trainer's (its seq-mean is over the P G completions;
    the estimator's over each prompt's G, summed over prompts), for every aggregation and split."""
    torch.manual_seed(0)
    problem = make_problem("sequence_policy")
    theta = problem.init_params("cpu", torch.float64)
    logits = problem.encode(theta)["logits"].detach().requires_grad_(True)
    dist = problem.distribution({"logits": logits})
    G, P = 8, problem.n_prompts
    x = dist.sample((G,))
    estimator = bench.make_estimator("group_advantage", aggregation=mode, micro_batches=K, std_ddof=1)

    class Fixed(Sampler):  # the same completions for both
        def sample(self, dist, n):
            return x

    def cost(x):  # float64 rewards, so both sides compute in float64
        return problem.cost(x).double()

    surrogate = estimator.surrogate(dist, cost, G, Fixed(), None)
    ours = torch.autograd.grad(surrogate.sum(), logits)[0]
    a = estimator.advantages(cost(x), prompt_dims=1)
    trainer = _trainer_gradient(problem, logits, x, a, mode, K)
    torch.testing.assert_close(ours, P * trainer, rtol=1e-10, atol=1e-12)


def test_which_aggregations_survive_micro_batching():
    """The same samples split into K = 2 and 4 micro-batches: a mean over sequences or over the global
    batch's tokens gives K = 1's gradient; a per-micro-batch token mean (bnpo) and a token sum do not,
    the token sum by exactly 1/K."""
    from bench.microbatching import microbatching_table

    df = microbatching_table(rewards=("verifier",), n_replicates=20)
    split = df[df["micro_batches"] > 1]
    assert split.groupby("aggregation")["equal"].all().to_dict() == {
        "seq_mean_token_mean": True, "seq_mean_token_sum": True, "seq_mean_token_sum_norm": True,
        "token_mean": True, "token_mean_microbatch": False, "token_sum": False}
    token_sum = split[split["aggregation"] == "token_sum"]
    assert token_sum["mean_norm_ratio"].tolist() == pytest.approx([1 / K for K in token_sum["micro_batches"]], rel=1e-12)


def test_population_std_scales_grpo_by_sqrt_g_over_g_minus_1():
    """The same samples with ddof 0 instead of 1: every group's deviation shrinks by sqrt((G-1)/G), so
    with eps 1e-9 GRPO's mean estimate grows by sqrt(G/(G-1)), the batch's (grpo_batch_scale) by
    sqrt(GP/(GP-1)), up to eps over the smallest nonzero deviation (0.25): 4e-9."""
    from bench.microbatching import conventions_table

    df = conventions_table(rewards=("verifier",), group_sizes=(4,), n_replicates=20)
    ratio = df.set_index(["estimator", "eps", "std_ddof"])["mean_norm_ratio"]
    for name, expected in (("grpo", math.sqrt(4 / 3)), ("grpo_batch_scale", math.sqrt(16 / 15))):
        assert ratio[name, 1e-9, 0] / ratio[name, 1e-9, 1] == pytest.approx(expected, rel=4e-9)
    assert (df.loc[df["eps"] != 1e-4, "max_relative_difference"] > 0).all()  # eps moves every estimate


def test_micro_batches_must_divide_the_batch():
    df = bench.compare("sequence_policy", {"name": "bnpo", "micro_batches": 3}, n_samples=4, n_replicates=100,
                       timing=False)
    assert df["status"].iloc[0] == "invalid_config"
    assert "estimator.micro_batches=3" in df["message"].iloc[0] and "16 completions" in df["message"].iloc[0]


# --- The advantage estimators against a trainer's loop over a flat batch -----------------------------

def _trainer_advantages(name, r, lengths, greedy):
    """The advantages as a trainer computes them: a flat batch of N = P G completions (prompt by
    prompt), a Python loop over each prompt's group, token matrices for the whitening."""
    P, G = r.shape[1], r.shape[0]
    scores = r.T.reshape(-1).tolist()  # prompt by prompt
    ell = lengths.T.reshape(-1).tolist()
    index = [p for p in range(P) for _ in range(G)]
    out = []
    for i, s in enumerate(scores):
        group = [j for j in range(len(scores)) if index[j] == index[i]]
        if name in ("reinforce_plus_plus_baseline", "gpg"):
            out.append(s - sum(scores[j] for j in group) / G)
        elif name == "opo":
            out.append(s - sum(ell[j] * scores[j] for j in group) / sum(ell[j] for j in group))
        elif name == "remax":
            out.append(s - float(greedy[index[i]]))
        else:  # reinforce_plus_plus
            out.append(s)
    if name.startswith("reinforce_plus_plus"):  # whiten over the batch's tokens (unbiased variance)
        L = int(max(ell))
        mat = torch.tensor([[a] * int(n) + [0.0] * (L - int(n)) for a, n in zip(out, ell)], dtype=torch.float64)
        mask = torch.tensor([[1.0] * int(n) + [0.0] * (L - int(n)) for n in ell], dtype=torch.float64)
        mean = (mat * mask).sum() / mask.sum()
        var = (((mat - mean) ** 2) * mask).sum() / (mask.sum() - 1)
        out = [float(v) for v in ((mat - mean) / torch.sqrt(var + 1e-8))[:, 0]]
    if name == "gpg":
        alpha = len(scores) / max(sum(1 for s in scores if s != 0), 1)
        out = [alpha * a for a in out]
    return torch.tensor(out, dtype=torch.float64).reshape(P, G).T


@pytest.mark.parametrize("name", ["reinforce_plus_plus", "reinforce_plus_plus_baseline", "opo", "remax", "gpg"])
@pytest.mark.parametrize("reward", ["verifier", "match"])
def test_each_advantage_estimator_is_the_trainers(name, reward):
    problem = make_problem("sequence_policy", reward=reward)
    dist = problem.distribution(problem.encode(problem.init_params("cpu", torch.float64)))
    torch.manual_seed(1)
    x = dist.sample((8,))
    r, lengths = problem.cost(x).double(), dist.sequence_lengths(x)
    greedy = problem.cost(dist.greedy()).double()
    ours = build("estimator", name).advantages(r, prompt_dims=1, lengths=lengths, greedy_reward=greedy)
    torch.testing.assert_close(ours, _trainer_advantages(name, r, lengths, greedy), rtol=1e-12, atol=1e-12)


def test_the_greedy_completion_takes_the_most_likely_token_at_each_step():
    problem = make_problem("sequence_policy")
    dist = problem.distribution(problem.encode(problem.init_params("cpu", torch.float64)))
    greedy = dist.greedy()
    table = dist.logits  # [P, L, V + 1, V]
    for p in range(problem.n_prompts):
        prev, expected = problem.vocab, []
        for t in range(problem.max_length):
            token = 0 if prev == 0 else int(table[p, t, prev].argmax())
            expected.append(token)
            prev = token
        assert greedy[p].tolist() == expected


def test_remax_is_unbiased_and_scores_one_more_completion():
    df = bench.measure("sequence_policy", "remax", n_samples=4, n_replicates=20_000, timing=False)
    total = df[df["param"] == "total"].iloc[0]
    assert total["bias_significant"] is not None and not total["bias_significant"]  # tested, not flagged
    assert build("estimator", "remax").evals_per_estimate(4) == 5
    with pytest.raises(bench.NotApplicable, match="needs greedy"):
        bench.measure("bernoulli_toy", "remax", n_samples=4, n_replicates=100)


# --- The KL term to a reference policy -----------------------------------------------------------

KL_PROBLEM = {"name": "sequence_policy", "kl_beta": 0.5}


def _with(name: str, **options):
    """A preset with options changed."""
    from bench.presets import preset
    from estimators import build_estimator

    return build_estimator({**preset("estimator", name), **options})
# (place, estimator, level): whether its expectation is the exact gradient of E[r] - beta KL.
KL_CASES = [(("reward", "k1", "token"), True), (("loss", "k2", "sequence"), True), (("loss", "k3_plus", "sequence"), True),
            (("none", "k1", "token"), False), (("loss", "k1", "token"), False), (("loss", "k3", "token"), False),
            (("loss", "k2", "token"), False), (("reward", "k2", "token"), False)]


@pytest.mark.parametrize("case,exact", KL_CASES, ids=["_".join(c) for c, _ in KL_CASES])
def test_which_kl_estimators_are_exact_in_expectation(case, exact):
    """RLOO with each KL estimator on the regularised policy (beta 0.5), R = 20,000 at G = 4 (seed
    0): the declared-exact ones pass the bias test, the others are flagged; the declaration matches."""
    place, k, level = case
    estimator = _with("rloo", kl=place, kl_estimator=k, kl_level=level)
    assert estimator.biased == (not exact) or place == "none"  # kl=none is exact for unregularised problems
    df = bench.measure(KL_PROBLEM, estimator, n_samples=4, n_replicates=20_000, timing=False)
    total = df[df["param"] == "total"].iloc[0]
    assert total["bias_significant"] is not None and bool(total["bias_significant"]) == (not exact), total["message"]


def test_k3_plus_has_k3s_value_and_k2s_gradient():
    est = _with("rloo", kl="loss", kl_estimator="k3_plus")
    rho = torch.linspace(-2, 2, 9, dtype=torch.float64, requires_grad=True)
    value = est.kl_values(rho.unsqueeze(-1), torch.zeros(9, 1, dtype=torch.float64))
    torch.testing.assert_close(value.squeeze(-1), torch.expm1(-rho) + rho)
    (grad,) = torch.autograd.grad(value.sum(), rho)
    torch.testing.assert_close(grad, rho.detach())  # d(rho^2 / 2) / d rho


def test_kl_options_are_checked():
    with pytest.raises(bench.NotApplicable, match="needs reference_policy"):
        bench.measure("sequence_policy", {"name": "rloo", "kl": "reward"}, n_samples=4, n_replicates=100)
    df = bench.compare(KL_PROBLEM, {"name": "rloo", "kl": "reward", "kl_estimator": "nope"}, n_samples=4,
                       n_replicates=100, timing=False)
    assert df["status"].iloc[0] == "invalid_config" and "estimator.kl_estimator='nope'" in df["message"].iloc[0]
    # In the reward nothing is differentiated: k3_plus is k3 there, estimate for estimate.
    same = [bench.estimates(KL_PROBLEM, {"name": "rloo", "kl": "reward", "kl_estimator": k}, n_samples=4,
                            n_replicates=50, seed=1) for k in ("k3", "k3_plus")]
    assert same[0].equals(same[1])
    assert _with("grpo", kl="loss", kl_estimator="k3").describe() == "grpo+k3_loss"


# --- Off-policy losses: samples from a stale policy ---------------------------------------------

OFF_POLICY = ("is_sequence", "ppo_clip", "dual_clip", "gspo", "cispo", "sapo", "geo_mean")


def test_every_off_policy_loss_is_the_on_policy_gradient_when_pi_old_is_pi():
    """behaviour_shift 0: pi_old is the policy, every ratio is 1 with the gradient of log pi, so each
    loss gives RLOO's on-policy estimates, estimate for estimate (the same samples, seed 3)."""
    on = bench.estimates("sequence_policy", "rloo", n_samples=4, n_replicates=200, seed=3, dtype=torch.float64)
    for loss in OFF_POLICY:
        off = bench.estimates("sequence_policy", {"name": "rloo", "policy_loss": loss}, n_samples=4,
                              n_replicates=200, seed=3, dtype=torch.float64)
        np.testing.assert_allclose(off.to_numpy(), on.to_numpy(), rtol=1e-10, atol=1e-12, err_msg=loss)


@pytest.mark.parametrize("loss", OFF_POLICY)
def test_only_the_unclipped_sequence_ratio_is_exact_off_policy(loss):
    """pi_old's logits moved by a standard normal table (behaviour_shift 1), R = 20,000 at G = 4
    (seed 0): the sequence's importance weight passes the bias test; the clipped and per-token
    ratios are flagged, as declared."""
    estimator = _with("rloo", policy_loss=loss)
    assert estimator.biased == (loss != "is_sequence")
    df = bench.measure({"name": "sequence_policy", "behaviour_shift": 1.0}, estimator, n_samples=4,
                       n_replicates=20_000, timing=False)
    total = df[df["param"] == "total"].iloc[0]
    assert total["bias_significant"] is not None and bool(total["bias_significant"]) == (loss != "is_sequence")


def test_off_policy_losses_refuse_a_kl_term_and_need_a_behaviour_policy():
    df = bench.compare(KL_PROBLEM, {"name": "rloo", "policy_loss": "ppo_clip", "kl": "loss"}, n_samples=4,
                       n_replicates=100, timing=False)
    assert df["status"].iloc[0] == "invalid_config" and "estimator.kl='loss'" in df["message"].iloc[0]
    with pytest.raises(bench.NotApplicable, match="needs behaviour_policy"):
        bench.measure("bernoulli_toy", {"name": "rloo", "policy_loss": "ppo_clip"}, n_samples=4, n_replicates=100)
    assert _with("rloo", policy_loss="gspo").describe() == "rloo+gspo"
