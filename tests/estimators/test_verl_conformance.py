"""The group estimators against verl's own functions (``verl.trainer.ppo.core_algos``, verl 0.9.1):
the sequence policy's sampled completions fed through verl's ``compute_*_outcome_advantage``,
``agg_loss`` and ``kl_penalty`` and through this benchmark's ``group_advantage`` presets give the same
advantages, gradients and KL terms (to 1e-6). Skipped where verl is not installed: it imports with
``pip install -e ".[rl]" && pip install --no-deps verl==0.9.1`` (its full requirements pull a GPU
stack). TRL's losses live inside its trainer and are not importable as functions; the aggregations
follow its ``GRPOTrainer._compute_loss`` (``loss_type`` grpo, bnpo, dr_grpo, dapo) as the docstring of
``estimators.group_advantage`` cites."""

import types

import pytest
import torch

from bench.presets import build, preset
from bench.problems import make_problem
from estimators import build_estimator
from estimators.sampling import Sampler

core = pytest.importorskip("verl.trainer.ppo.core_algos", reason='verl is not installed: pip install -e ".[rl]" '
                                                                 "&& pip install --no-deps verl==0.9.1")

G = 8


def _batch(reward: str, seed: int = 1):
    """G completions of each prompt, their rewards, lengths and greedy rewards (ours, ``[G, P]``), and
    verl's flat batch (prompt by prompt): token-level rewards (the reward on the last token), the
    response mask and the prompt index."""
    problem = make_problem("sequence_policy", reward=reward)
    theta = problem.init_params("cpu", torch.float64)
    logits = problem.encode(theta)["logits"].detach().requires_grad_(True)
    dist = problem.distribution({"logits": logits})
    x = Sampler.seeded(seed, "cpu").sample(dist, G)  # [G, P, L]
    r, lengths = problem.cost(x).double(), dist.sequence_lengths(x)
    greedy = problem.cost(dist.greedy()).double()
    flat = lambda t: t.transpose(0, 1).reshape(-1, *t.shape[2:])  # noqa: E731  [G, P, ...] -> [P G, ...]
    mask = flat(dist.alive(x)).double()
    token_rewards = torch.zeros_like(mask)
    token_rewards[torch.arange(len(mask)), flat(lengths) - 1] = flat(r)
    index = torch.arange(problem.n_prompts).repeat_interleave(G).numpy()
    return types.SimpleNamespace(problem=problem, dist=dist, logits=logits, x=x, r=r, lengths=lengths, greedy=greedy,
                                 flat=flat, mask=mask, token_rewards=token_rewards, index=index)


def _verl_advantages(name: str, b) -> torch.Tensor:
    """verl's advantage of each completion (its first token's), ``[P G]``."""
    common = dict(token_level_rewards=b.token_rewards.clone(), response_mask=b.mask)
    if name == "grpo":
        out = core.compute_grpo_outcome_advantage(**common, index=b.index, epsilon=1e-4)
    elif name == "dr_grpo":
        out = core.compute_grpo_outcome_advantage(**common, index=b.index, norm_adv_by_std_in_grpo=False)
    elif name == "rloo":
        out = core.compute_rloo_outcome_advantage(**common, index=b.index)
    elif name == "reinforce_plus_plus":
        out = core.compute_reinforce_plus_plus_outcome_advantage(**common, config=types.SimpleNamespace(gamma=1.0))
    elif name == "reinforce_plus_plus_baseline":
        out = core.compute_reinforce_plus_plus_baseline_outcome_advantage(**common, index=b.index)
    elif name == "opo":
        out = core.compute_opo_outcome_advantage(**common, index=b.index)
    elif name == "gpg":
        out = core.compute_gpg_outcome_advantage(**common, index=b.index)
    else:  # remax: the greedy completion's reward as the baseline
        out = core.compute_remax_outcome_advantage(**common, reward_baselines=b.greedy.repeat_interleave(G))
    return out[0][:, 0]


@pytest.mark.parametrize("reward", ["verifier", "match"])
@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_plus_plus", "reinforce_plus_plus_baseline",
                                  "opo", "gpg", "remax"])
def test_advantages_are_verls(name, reward):
    b = _batch(reward)
    ours = build("estimator", name).advantages(b.r, prompt_dims=1, lengths=b.lengths, greedy_reward=b.greedy)
    torch.testing.assert_close(b.flat(ours), _verl_advantages(name, b), rtol=1e-6, atol=1e-6)


VERL_MODES = {"seq_mean_token_mean": "seq-mean-token-mean", "seq_mean_token_sum": "seq-mean-token-sum",
              "seq_mean_token_sum_norm": "seq-mean-token-sum-norm", "token_mean": "token-mean", "token_sum": "token-sum"}


@pytest.mark.parametrize("mode", sorted(VERL_MODES))
def test_each_aggregation_is_verls_agg_loss(mode):
    """The gradient of this benchmark's surrogate is P times that of minus verl's ``agg_loss`` of the
    per-token policy-gradient loss ``-A log pi`` (its batch means over the P G completions)."""
    b = _batch("verifier")
    estimator = build_estimator({**preset("estimator", "grpo"), "aggregation": mode})

    class Fixed(Sampler):  # the same completions for both
        def sample(self, dist, n):
            return b.x

    ours = torch.autograd.grad(estimator.surrogate(b.dist, lambda x: b.problem.cost(x).double(), G, Fixed(), None).sum(),
                               b.logits)[0]
    a = estimator.advantages(b.r, prompt_dims=1, lengths=b.lengths)
    token_logp = b.flat(b.dist.token_log_prob(b.x))  # [P G, L]
    loss = core.agg_loss(-b.flat(a)[:, None] * token_logp, b.mask, VERL_MODES[mode])
    verl = torch.autograd.grad(-b.problem.n_prompts * loss, b.logits)[0]
    torch.testing.assert_close(ours, verl, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("ours,theirs", [("k1", "k1"), ("k2", "k2"), ("k3", "k3"), ("k3_plus", "k3+")])
def test_kl_estimators_are_verls_kl_penalty(ours, theirs):
    """Per token, the value and the gradient in log pi of this benchmark's KL estimators and of verl's
    ``kl_penalty`` (k3's clamp at 10 is not reached: log-ratios within +-2)."""
    log_q = torch.linspace(-3.0, -0.1, 12, dtype=torch.float64, requires_grad=True)
    log_ref = torch.linspace(-1.5, -1.0, 12, dtype=torch.float64)
    estimator = build_estimator({**preset("estimator", "grpo"), "kl": "loss", "kl_estimator": ours})
    mine, verl = estimator.kl_values(log_q, log_ref), core.kl_penalty(log_q, log_ref, theirs)
    torch.testing.assert_close(mine, verl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(mine.sum(), log_q)[0], torch.autograd.grad(verl.sum(), log_q)[0],
                               rtol=1e-12, atol=1e-12)


# verl's policy losses by this benchmark's ``policy_loss`` (its ``vanilla`` always applies the dual clip).
VERL_LOSSES = {"dual_clip": "vanilla", "gspo": "gspo", "cispo": "cispo", "sapo": "sapo", "geo_mean": "geo_mean"}


def _actor_config():
    from verl.workers.config.actor import ActorConfig
    return ActorConfig(strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=G, clip_ratio=0.2,
                       clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0, tau_pos=1.0, tau_neg=1.05)


@pytest.mark.parametrize("reward", ["verifier", "match"])
@pytest.mark.parametrize("loss", sorted(VERL_LOSSES))
def test_each_off_policy_loss_is_verls(loss, reward):
    """G completions per prompt drawn from a stale pi_old (behaviour_shift 0.5, so that ratios leave
    the clip), GRPO's advantages: the gradient of this benchmark's off-policy surrogate is P times that
    of minus verl's ``compute_policy_loss_<name>`` (clip 0.2 / 0.28, SAPO's temperatures 1 / 1.05)."""
    problem = make_problem("sequence_policy", reward=reward, behaviour_shift=0.5)
    logits = problem.encode(problem.init_params("cpu", torch.float64))["logits"].detach().requires_grad_(True)
    dist = problem.distribution({"logits": logits})
    old = dist.behaviour()
    x = Sampler.seeded(4, "cpu").sample(old, G)
    aggregation = "token_mean" if loss in ("dual_clip", "gspo", "cispo") else "seq_mean_token_mean"
    estimator = build_estimator({**preset("estimator", "grpo"), "aggregation": aggregation, "policy_loss": loss,
                                 "clip_low": 0.2, "clip_high": 0.28})
    assert estimator.conforms_to().startswith(f"verl {core_version()}")

    class Fixed(Sampler):
        def sample(self, d, n):
            return x

    cost = lambda s: problem.cost(s).double()  # noqa: E731
    ours = torch.autograd.grad(estimator.surrogate(dist, cost, G, Fixed(), None).sum(), logits)[0]
    flat = lambda t: t.transpose(0, 1).reshape(-1, *t.shape[2:])  # noqa: E731
    mask = flat(dist.alive(x)).double()
    a = estimator.advantages(cost(x), prompt_dims=1, lengths=dist.sequence_lengths(x))
    fn = core.get_policy_loss_fn(VERL_LOSSES[loss])
    verl_loss, _ = fn(old_log_prob=flat(old.token_log_prob(x)).detach(), log_prob=flat(dist.token_log_prob(x)),
                      advantages=flat(a)[:, None] * mask, response_mask=mask,
                      loss_agg_mode=VERL_MODES[aggregation], config=_actor_config())
    verl = torch.autograd.grad(-problem.n_prompts * verl_loss, logits)[0]
    assert ours.abs().max() > 1e-3  # a gradient that could disagree
    torch.testing.assert_close(ours, verl, rtol=1e-6, atol=1e-9)


def core_version() -> str:
    import verl
    return verl.__version__


def test_the_version_recorded_in_rows_is_the_one_tested():
    """A row's ``conforms_to`` names the verl version these tests ran against: the installed one."""
    from estimators.group_advantage import VERL_VERSION
    assert core_version() == VERL_VERSION
    assert build("estimator", "grpo").conforms_to() == (f"verl {VERL_VERSION}: compute_grpo_outcome_advantage, "
                                                       "agg_loss(seq-mean-token-mean)")
    assert build("estimator", "bnpo").conforms_to() == ""  # TRL's loss, not verl's
