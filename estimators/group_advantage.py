"""Group baselines of the score function, as used to train language models with verifiable rewards:
RLOO, GRPO, Dr. GRPO, DAPO, TRL's BNPO, REINFORCE++, OPO, ReMax and GPG are presets of one estimator
whose knobs say how the group's rewards are centred and scaled into advantages and how the
per-token losses are aggregated (over how many micro-batches).

The ``n_samples`` samples of one estimate are the group (G completions of each prompt; the batch of
one estimate is every prompt's group). With the group's rewards ``r_1..r_G`` and the score
``s_i = grad log q(o_i)`` (a completion's summed token log-probabilities), every aggregation is
``(1/G) sum_i w_i s_i`` per prompt, summed over the prompts, with a weight ``w_i`` of the advantage
``A_i = center(r)_i / (scale(r) + eps)``, the lengths and the number of micro-batches.
"""

from __future__ import annotations

import math

import torch

from .base import Estimator, mean_over_samples
from .options import ConfigError, choice, integer, number
from .registry import register

CENTERS = ("mean", "loo", "none", "length_weighted", "greedy")
SCALES = ("group", "batch", "none", "batch_whiten", "nonzero")
AGGREGATIONS = ("seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm", "token_mean",
                "token_mean_microbatch", "token_sum")
KL_PLACES = ("none", "reward", "loss")
KL_ESTIMATORS = ("k1", "k2", "k3", "k3_plus")
KL_LEVELS = ("token", "sequence")
POLICY_LOSSES = ("on_policy", "is_sequence", "ppo_clip", "dual_clip", "gspo", "cispo", "sapo", "geo_mean")
NEEDS_LENGTHS = frozenset({"seq_mean_token_mean", "seq_mean_token_sum_norm", "token_mean", "token_mean_microbatch"})


@register
class GroupAdvantage(Estimator):
    r"""Group-normalised advantages with an aggregation of the token losses (declared biased unless
    ``center`` is ``loo`` or ``none``, ``scale=none`` and ``aggregation=seq_mean_token_sum``).

    .. math:: \hat g = \sum_{p} \frac1G\sum_{i=1}^G w_{pi}\,\nabla_\phi\log q(o_{pi}),\qquad
              A_{pi} = \frac{c_i(r_p)}{s(r) + \epsilon}

    * ``center``: ``mean``: :math:`c_i = r_i - \bar r` (GRPO, Dr. GRPO; the mean includes
      :math:`r_i`, which scales the expected gradient by :math:`(G-1)/G`); ``loo``:
      :math:`c_i = r_i - \frac1{G-1}\sum_{j\ne i} r_j = \frac G{G-1}(r_i - \bar r)` (RLOO: Kool, van Hoof
      & Welling, ICLR workshop 2019; Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style
      Optimization for Learning from Human Feedback in LLMs", ACL 2024); ``none``: :math:`c_i = r_i`;
      ``length_weighted``: :math:`c_i = r_i - \sum_j \ell_j r_j / \sum_j \ell_j` (OPO: Hao et al., "On-Policy
      RL with Optimal Reward Baseline", 2025; the sample's own reward is in its baseline); ``greedy``:
      :math:`c_i = r_i - r(o^\star)`, :math:`o^\star` the prompt's greedy completion (ReMax: Li et al.,
      ICML 2024; a baseline of the policy, not of the samples: unbiased; one more reward per prompt).
    * ``scale``: ``group``: :math:`s` = the group's reward standard deviation (``std_ddof`` 1: the
      sample one, as TRL and verl compute it; 0: the population one) (GRPO: Shao et al.,
      "DeepSeekMath", 2024, Eq. 3); ``batch``: the standard deviation over the whole batch of one
      estimate (every prompt's group; ``scale_rewards=batch`` of TRL, ms-swift and tinker);
      ``none``: :math:`s = 1`, :math:`\epsilon = 0` (Dr. GRPO: Liu et al., "Understanding
      R1-Zero-Like Training: A Critical Perspective", 2025); ``batch_whiten``: the whitening of
      every token's advantage over the batch's tokens, :math:`A = (c - \mu)/\sqrt{\sigma^2 + \epsilon}` with
      :math:`\mu, \sigma^2` the token-weighted (:math:`\ell_i`) mean and variance of :math:`c` over the
      batch (REINFORCE++: Hu et al., 2025, with ``center=none``; REINFORCE++-baseline with
      ``center=mean``; verl's and OpenRLHF's ``masked_whiten``); ``nonzero``: :math:`A = c\,N/m`,
      :math:`m` the batch's nonzero rewards (GPG: Chu et al., "GPG: A Simple and Strong Reinforcement
      Learning Baseline for Model Reasoning", 2025, its alpha as verl computes it). ``eps`` is added to
      the deviation (TRL 1e-4, verl 1e-6; 1e-8 to the variance in the whitening).
    * ``aggregation``, the token losses :math:`A_{pi}\log\pi(o_{pi,t})` of a batch of :math:`N = GP`
      completions with lengths :math:`\ell_{pi}` (end token included), as the trainers name them
      (Hugging Face TRL's ``loss_type``, verl's ``loss_agg_mode``), scaled here by :math:`P` so that
      the unbiased choice has the exact gradient's scale:
      ``seq_mean_token_mean`` (GRPO's original, verl's seq-mean-token-mean): :math:`w = A/\ell`;
      ``seq_mean_token_sum`` (verl's seq-mean-token-sum; RLOO, Dr. GRPO up to a constant): :math:`w = A`;
      ``seq_mean_token_sum_norm`` (TRL's ``dr_grpo``, verl's seq-mean-token-sum-norm): :math:`w = A/L`,
      :math:`L` the maximum length (verl before its global-batch rewrite divided the batch's token
      sum by :math:`L` alone: :math:`N` times this, a constant); ``token_mean`` (DAPO: Yu et al.
      2025, Eq. 8; verl's token-mean over the global batch): :math:`w = A\,N/T`, :math:`T = \sum \ell`
      the batch's tokens;
      ``token_mean_microbatch`` (TRL's ``bnpo``: the mean over each micro-batch's tokens, the K =
      ``micro_batches`` micro-batches' losses averaged): :math:`w = A\,N/(K T_k)`; ``token_sum``
      (verl's token-sum, the K losses averaged): :math:`w = A\,N/K`.
    * ``micro_batches``: the N completions of one estimate, laid out prompt by prompt, cut into K
      consecutive micro-batches with gradient accumulation (each micro-batch's loss divided by K):
      the aggregations normalised per micro-batch (``token_mean_microbatch``, ``token_sum``) then
      depend on K; the others do not (``python -m bench.microbatching`` measures it).

    * ``kl``: the term ``-kl_beta KL(q || pi_ref)`` of a problem that regularises towards a reference
      policy (``sequence_policy``'s ``problem.kl_beta``), with the estimator ``kl_estimator`` of the
      log-ratio :math:`\rho = \log q - \log\pi_{ref}` (Schulman 2020, "Approximating KL divergence"):
      k1 :math:`= \rho`, k2 :math:`= \rho^2/2`, k3 :math:`= e^{-\rho} - 1 + \rho`, k3_plus (k3's
      value, k2's gradient: verl's ``low_var_kl+``; in the reward, where nothing is differentiated, it is
      k3), of each token's :math:`\rho_t` summed over the
      completion (``kl_level=token``) or of the sequence's :math:`\sum_t\rho_t` (``sequence``).
      ``reward``: :math:`r_i - \beta K_i` (detached) replaces the reward before the advantage (verl's
      ``use_kl_in_reward``); ``loss``: :math:`-\beta` times the KL terms, differentiated, is added to
      the surrogate, token terms aggregated as the token losses are (``use_kl_loss``; GRPO's k3,
      Shao et al. 2024, Eq. 4). Exact in expectation, by the identity
      :math:`\nabla KL = E_q[\rho\,\nabla\log q]`: k1 in the reward and k2 (or k3_plus) of the
      sequence in the loss; the others are declared biased and their bias measured. ``kl=none`` on a
      regularised problem ignores the term (and is measured biased by it).

    * ``policy_loss``: the losses of samples from an older policy :math:`\pi_{old}` (the problem's
      ``behaviour()``; ``on_policy``, the default, samples the policy itself), with the token ratios
      :math:`\rho_t = \pi(o_t)/\pi_{old}(o_t)` and the clip :math:`[1 - \epsilon_l, 1 + \epsilon_h]`
      (``clip_low``, ``clip_high``), each completion's token terms aggregated as the token losses
      are: ``is_sequence``: :math:`\prod_t\rho_t\,A` (importance sampling of the sequence, unclipped:
      exact in expectation); ``ppo_clip``: :math:`\min(\rho_t A, \mathrm{clip}(\rho_t) A)` per token
      (Schulman et al. 2017, PPO; verl's ``vanilla``, DAPO's clip-higher with ``clip_high`` 0.28);
      ``dual_clip``: the same, at least :math:`c A` where :math:`A < 0` (Ye et al. 2020, "Mastering
      Complex Control in MOBA Games"); ``gspo``: the sequence's ratio
      :math:`s = (\prod_t\rho_t)^{1/\ell}` clipped, :math:`\min(sA, \mathrm{clip}(s)A)` on each of its
      tokens (Zheng et al. 2025, GSPO); ``cispo``: :math:`\mathrm{sg}(\mathrm{clip}(\rho_t))\,A\log\pi(o_t)`
      (MiniMax-M1, 2025: the clipped ratio as a weight, every token's gradient kept); ``sapo``: the
      soft gate :math:`\frac4\tau\sigma(\tau(\rho_t - 1))\,A` per token, :math:`\tau` =
      ``sapo_tau_pos`` where :math:`A > 0`, else ``sapo_tau_neg`` (Gao et al. 2025, "Soft Adaptive
      Policy Optimization", arXiv 2511.20347: its gradient :math:`4\sigma(1-\sigma)\rho_t A\nabla\log
      \pi(o_t)` is the on-policy one at :math:`\rho_t = 1` and fades smoothly off it, where the hard
      clip cuts); ``geo_mean``: the geometric mean of the token ratios, each clipped in log space
      to :math:`[-\epsilon_l, \epsilon_h]` on the side the advantage's sign selects,
      :math:`\exp(\frac1\ell\sum_t \mathrm{sgn}(A)\min(\mathrm{sgn}(A)\log\rho_t,
      \mathrm{sgn}(A)\,\mathrm{clip}(\log\rho_t)))\,A` per completion (Zhao et al. 2025, GMPO,
      "Geometric-Mean Policy Optimization", arXiv 2507.20673; verl's ``geo_mean``: there
      ``clip_ratio_low/high`` bound the log-ratio, as ``clip_low/high`` do here; the paper uses
      :math:`\epsilon = 0.4`), scaled by :math:`\ell` so that under the default aggregation
      (:math:`1/\ell`) it is verl's mean over completions. At
      :math:`\pi_{old} = \pi` each is the on-policy gradient; only ``is_sequence`` stays exact when
      :math:`\pi_{old}` is stale (the others declared biased, their bias measured).
      Conformance: ``dual_clip`` is verl's ``vanilla`` (which always applies the dual clip at
      ``clip_ratio_c``), ``ppo_clip`` TRL's ``grpo``/``dapo`` clip (trl 1.16.0,
      ``trl/trainer/grpo_trainer.py`` lines 3112-3119); ``gspo``, ``cispo``, ``sapo`` and ``geo_mean``
      are verl's losses of those names (TRL's ``cispo`` clamps the ratio above only, at
      ``epsilon_high``: line 3110; its ``sapo``, lines 3121-3124, is verl's).

    Where the formulas come from in code. verl 0.9.1's own functions are run against these in
    tests/estimators/test_verl_conformance.py (advantages, ``agg_loss``, ``kl_penalty``, the policy
    losses; a row's ``conforms_to`` names them). TRL's losses live inside its trainer and do not
    import as functions, so they are cited, trl 1.16.0, ``trl/trainer/grpo_trainer.py``: the group
    mean and ``scale_rewards`` group | batch | none with eps 1e-4, lines 2767-2787 (the sample
    standard deviation: ``trl/trainer/utils.py`` ``nanstd``, lines 1037-1043); the token or
    sequence ratio (``importance_sampling_level``), lines 3083-3095; k3 per token in the loss,
    lines 3098-3105 and 3149-3150; ``loss_type`` ``grpo``/``sapo``: the mean over each completion's
    tokens then over completions (``seq_mean_token_mean``), lines 3153-3157; ``bnpo``: the
    micro-batch's token mean (``token_mean_microbatch``), 3158-3162; ``dr_grpo``: the token sum over
    completions times ``max_completion_length`` (``seq_mean_token_sum_norm``), 3163-3167; ``dapo``/
    ``cispo``: the token sum over the generation batch's tokens (``token_mean``), 3168-3174.

    A group whose rewards are all equal is centred to exactly 0 and gets advantage exactly 0. The
    "batch" of ``scale=batch`` and of the token means is the group and the distribution's trailing
    prompt dimensions (``prompt_dims``, 0 for an ordinary distribution), never its runs or replicates.
    """

    name = "group_advantage"
    summary = ("`Σ_p (1/G) Σ_i w_i ∇log q(o_i)`, `A_i = center(r)_i / (scale(r) + eps)` over the group of G = "
               "`n_samples`, `w_i` the aggregation's weight of `A_i` (RLOO, GRPO, Dr. GRPO, DAPO, BNPO, "
               "REINFORCE++, OPO, ReMax, GPG)")
    min_samples = 2
    options_spec = {
        "center": choice("mean", CENTERS, " | ".join(CENTERS)),
        "scale": choice("group", SCALES, " | ".join(SCALES)),
        "aggregation": choice("seq_mean_token_mean", AGGREGATIONS, " | ".join(AGGREGATIONS)),
        "micro_batches": integer(1, minimum=1, doc="micro-batches of the batch, their losses averaged"),
        "eps": number(1e-4, minimum=0.0, doc="added to the standard deviation (to the variance for batch_whiten)"),
        "std_ddof": choice(1, (0, 1), "the standard deviation's degrees of freedom: 1 (sample), 0"),
        "kl": choice("none", KL_PLACES, "where the KL to the reference policy enters: none | reward | loss"),
        "kl_estimator": choice("k1", KL_ESTIMATORS, "k1 | k2 | k3 | k3_plus (k3's value, k2's gradient)"),
        "kl_level": choice("token", KL_LEVELS, "token (k of each token's log-ratio, summed) | sequence (k of the "
                                               "sequence's)"),
        "policy_loss": choice("on_policy", POLICY_LOSSES, " | ".join(POLICY_LOSSES) + " (samples from pi_old but "
                                                                                     "on_policy)"),
        "clip_low": number(0.2, minimum=0.0, doc="the ratio's clip below 1 (1 - clip_low)"),
        "clip_high": number(0.2, minimum=0.0, doc="the ratio's clip above 1 (1 + clip_high)"),
        "dual_clip_c": number(3.0, minimum=1.0, doc="dual_clip's bound on a negative advantage's term (c A)"),
        "sapo_tau_pos": number(1.0, minimum=1e-6, doc="sapo's gate temperature where the advantage is > 0"),
        "sapo_tau_neg": number(1.05, minimum=1e-6, doc="sapo's gate temperature where the advantage is <= 0"),
    }

    def setup(self):
        needs = set()
        if self.aggregation in NEEDS_LENGTHS or self.center == "length_weighted" or self.scale == "batch_whiten":
            needs.add("sequence_lengths")
        if self.center == "greedy":
            needs.add("greedy")
        if self.policy_loss != "on_policy":
            needs |= {"behaviour_policy", "sequence_lengths"}
            if self.kl != "none":
                raise ConfigError("estimator.kl", self.kl, f"the KL term is estimated on on-policy samples only: "
                                                           f"use it with estimator.policy_loss=on_policy")
        if self.kl != "none":
            needs.add("reference_policy")
            if self.kl_level == "token" and self.kl == "loss":
                needs.add("sequence_lengths")
        self.requires = frozenset(needs)
        # The KL term's gradient E_q[(log q - log pi_ref) grad log q] is what k1 in the reward gives
        # through the score function, and what the gradient of k2 (or k3_plus) of the sequence's
        # log-ratio gives in the loss; per token, k2 drops the later tokens' log-ratios, k1's gradient
        # in the loss has mean 0 and k3's is the gradient of KL(pi_ref || q).
        kl_exact = (self.kl == "none" or (self.kl == "reward" and self.kl_estimator == "k1")
                    or (self.kl == "loss" and self.kl_level == "sequence" and self.kl_estimator in ("k2", "k3_plus")))
        # Off-policy, only the unclipped sequence ratio corrects pi_old's samples exactly.
        self.biased = not (self.center in ("loo", "none", "greedy") and self.scale == "none"
                           and self.aggregation == "seq_mean_token_sum" and kl_exact
                           and self.policy_loss in ("on_policy", "is_sequence"))

    def describe(self):
        name = PRESETS.get((self.center, self.scale, self.aggregation))
        if name is None or self.micro_batches != (2 if name == "bnpo" else 1) or self.std_ddof != 1:
            return super().describe()
        default_eps = 1e-8 if self.scale == "batch_whiten" else 1e-4
        label = name if self.scale in ("none", "nonzero") or self.eps == default_eps else f"{name}(eps={self.eps})"
        if self.kl != "none":  # e.g. grpo+k3_loss, rloo+k2_loss_seq
            label += f"+{self.kl_estimator}_{self.kl}" + ("_seq" if self.kl_level == "sequence" else "")
        if self.policy_loss != "on_policy":  # e.g. rloo+ppo_clip
            label += f"+{self.policy_loss}"
        return label

    def conforms_to(self):
        """``verl <VERL_VERSION>: <its functions>`` where every piece of this configuration is one that
        tests/estimators/test_verl_conformance.py checks against verl's own functions; else empty."""
        advantage = VERL_ADVANTAGES.get((self.center, self.scale))
        aggregation = VERL_AGGREGATIONS.get(self.aggregation)
        policy = VERL_POLICY_LOSSES.get(self.policy_loss, "")
        if (advantage is None or aggregation is None or self.policy_loss not in VERL_POLICY_LOSSES
                or self.std_ddof != 1 or self.micro_batches != 1 or (self.kl != "none" and self.kl_level != "token")
                # verl's sapo and geo_mean aggregate as GRPO's original whatever loss_agg_mode says
                or (self.policy_loss in ("sapo", "geo_mean") and self.aggregation != "seq_mean_token_mean")):
            return ""
        parts = [advantage, f"agg_loss({aggregation})"] + ([policy] if policy else [])
        if self.kl != "none":
            parts.append(f"kl_penalty({VERL_KL[self.kl_estimator]})")
        return f"verl {VERL_VERSION}: " + ", ".join(parts)

    def check(self, dist, n_samples, cost=None):
        if n_samples < 2:
            raise ConfigError("n_samples", n_samples, f"{self.describe()} needs a group of n_samples >= 2: the "
                                                      "advantage of a single sample is not defined")
        prompt_dims = getattr(dist, "prompt_dims", 0)
        n = n_samples * math.prod(dist.batch_shape[len(dist.batch_shape) - prompt_dims:])
        if n % self.micro_batches:
            raise ConfigError("estimator.micro_batches", self.micro_batches,
                              f"must divide the {n} completions of one estimate (n_samples={n_samples} per prompt)")
        super().check(dist, n_samples, cost)

    def evals_per_estimate(self, n_samples, dist=None):
        return n_samples + (1 if self.center == "greedy" else 0)  # ReMax also scores the greedy completion

    def advantages(self, r: torch.Tensor, prompt_dims: int = 0, lengths: torch.Tensor | None = None,
                   greedy_reward: torch.Tensor | None = None) -> torch.Tensor:
        """The advantages of rewards ``r`` (``[G, *batch]``, the group first); ``lengths`` (same
        shape) for ``length_weighted`` and ``batch_whiten``, ``greedy_reward`` (``[*batch]``) for ``greedy``."""
        G = r.shape[0]
        batch = [0] + list(range(r.dim() - prompt_dims, r.dim()))  # one estimate's group and prompts
        # A group of equal rewards is centred to exactly 0: r - mean(r) is not, where the mean rounds
        # (G copies of 0.1 in float32), and eps = 0 would then divide that rounding by a zero std.
        equal = (r == r[:1]).all(0, keepdim=True)
        if self.center == "mean":
            c = torch.where(equal, 0.0, r - r.mean(0, keepdim=True))
        elif self.center == "loo":
            c = torch.where(equal, 0.0, (r - r.mean(0, keepdim=True)) * (G / (G - 1)))
        elif self.center == "length_weighted":
            ell = lengths.to(r.dtype)
            c = torch.where(equal, 0.0, r - (ell * r).sum(0, keepdim=True) / ell.sum(0, keepdim=True))
        elif self.center == "greedy":
            c = r - greedy_reward.unsqueeze(0)
        else:
            c = r
        if self.scale == "none":
            return c
        if self.scale == "nonzero":  # GPG's alpha: N over the batch's nonzero rewards
            n = math.prod(r.shape[d] for d in batch)
            nonzero = (r != 0).to(r.dtype).sum(batch, keepdim=True).clamp(min=1)
            return c * (n / nonzero)
        if self.scale == "batch_whiten":  # every token of a completion carries its advantage
            ell = lengths.to(r.dtype)
            tokens = ell.sum(batch, keepdim=True)
            mu = (ell * c).sum(batch, keepdim=True) / tokens
            var = (ell * (c - mu) ** 2).sum(batch, keepdim=True) / (tokens - self.std_ddof)
            return (c - mu) / torch.sqrt(var + self.eps)
        if self.scale == "group":
            # torch.std over the leading (group) dimension ran 40x slower than these two passes
            std = ((r - r.mean(0, keepdim=True)).square().sum(0, keepdim=True) / (r.shape[0] - self.std_ddof)).sqrt()
        else:
            std = r.std(batch, keepdim=True, correction=self.std_ddof)
        denom = std + self.eps
        return torch.where(c == 0, torch.zeros_like(c), c / torch.where(denom > 0, denom, torch.ones_like(denom)))

    def weights(self, a: torch.Tensor, lengths: torch.Tensor | None, max_length: int, prompt_dims: int = 0,
                micro_batches: int | None = None) -> torch.Tensor:
        """Each completion's weight ``w`` (see the docstring): ``a`` and ``lengths`` are ``[G, *batch]``
        (``lengths`` ``None`` where the aggregation needs none); ``micro_batches`` overrides the option."""
        K = self.micro_batches if micro_batches is None else micro_batches
        prompts = list(range(a.dim() - prompt_dims, a.dim()))
        N = a.shape[0] * math.prod(a.shape[d] for d in prompts)  # the completions of one estimate
        mode = self.aggregation
        if mode == "seq_mean_token_sum":
            return a
        if mode == "token_sum":
            return a * (N / K)
        lengths = lengths.to(a.dtype)
        if mode == "seq_mean_token_mean":
            return a / lengths
        if mode == "seq_mean_token_sum_norm":
            return a / max_length
        if mode == "token_mean":
            return a * N / lengths.sum([0, *prompts], keepdim=True)
        return a * N / (K * micro_batch_tokens(lengths, K, prompt_dims))  # token_mean_microbatch

    def kl_values(self, log_q: torch.Tensor, log_ref: torch.Tensor) -> torch.Tensor:
        """The KL estimator ``k`` of the token log-ratios ``rho = log_q - log_ref`` (``[..., L]``, 0
        after the end): per token ``[..., L]``, or of the sequence's ``[..., 1]`` (Schulman 2020,
        "Approximating KL divergence": k1 = rho, k2 = rho^2 / 2, k3 = exp(-rho) - 1 + rho; k3_plus:
        k3's value with k2's gradient, verl's ``low_var_kl+``)."""
        rho = log_q - log_ref
        if self.kl_level == "sequence":
            rho = rho.sum(-1, keepdim=True)
        k2 = 0.5 * rho**2
        if self.kl_estimator == "k1":
            return rho
        if self.kl_estimator == "k2":
            return k2
        k3 = torch.expm1(-rho) + rho
        return k3 if self.kl_estimator == "k3" else k2 + (k3 - k2).detach()

    @torch.no_grad()
    def _advantages_of(self, dist, cost, x, r=None):
        """The samples' advantages (of rewards ``r``, default ``cost(x)``) and the aggregation's
        weights as a function of them (``weigh(a)``; ``weigh(1)``: a unit advantage's)."""
        r = cost(x) if r is None else r  # [G, *batch]
        prompt_dims = getattr(dist, "prompt_dims", 0)
        lengths = dist.sequence_lengths(x) if "sequence_lengths" in self.requires else None
        greedy = cost(dist.greedy().unsqueeze(0))[0] if self.center == "greedy" else None
        a = self.advantages(r, prompt_dims, lengths, greedy)
        max_length = dist.event_shape[-1] if dist.event_shape else 1
        return a, lengths, lambda v: self.weights(v, lengths, max_length, prompt_dims)

    def _off_policy_surrogate(self, dist, cost, n_samples, sampler):
        """The surrogate of samples from pi_old (``dist.behaviour()``) with the token ratios
        pi(o_t) / pi_old(o_t) (see the class docstring)."""
        old = dist.behaviour()
        x = sampler.sample(old, n_samples)
        log_q = dist.token_log_prob(x)  # [G, *batch, L], 0 after the end
        log_ratio = log_q - old.token_log_prob(x).detach()
        alive = dist.alive(x).to(log_q.dtype)
        a, lengths, weigh = self._advantages_of(dist, cost, x)
        unit = weigh(torch.ones_like(a))
        low, high = 1 - self.clip_low, 1 + self.clip_high
        A = a.unsqueeze(-1)
        if self.policy_loss == "is_sequence":
            per_completion = torch.exp(log_ratio.sum(-1)) * a
        elif self.policy_loss == "gspo":  # the sequence's geometric-mean ratio, clipped, on every token
            s = torch.exp(log_ratio.sum(-1) / lengths.to(log_q.dtype))
            per_completion = torch.minimum(s * a, s.clamp(low, high) * a) * lengths.to(log_q.dtype)
        elif self.policy_loss == "geo_mean":  # GMPO: each log-ratio clipped on its advantage's side
            sign = torch.sign(A)
            clipped = log_ratio.clamp(-self.clip_low, self.clip_high)
            kept = sign * torch.minimum(sign * log_ratio, sign * clipped)
            ell = lengths.to(log_q.dtype)
            per_completion = torch.exp((kept * alive).sum(-1) / ell) * a * ell
        elif self.policy_loss == "sapo":  # a smooth gate of the token ratio in place of the clip
            tau = torch.where(A > 0, self.sapo_tau_pos, self.sapo_tau_neg).to(log_q.dtype)
            term = torch.sigmoid(tau * (torch.exp(log_ratio) - 1)) * (4 / tau) * A
            per_completion = (term * alive).sum(-1)
        else:
            rho = torch.exp(log_ratio)
            if self.policy_loss == "cispo":  # the clipped ratio as a weight, the gradient through log pi
                term = rho.detach().clamp(low, high) * A * log_q
            else:
                term = torch.minimum(rho * A, rho.clamp(low, high) * A)
                if self.policy_loss == "dual_clip":
                    term = torch.where(A < 0, torch.maximum(term, self.dual_clip_c * A), term)
            per_completion = (term * alive).sum(-1)
        return mean_over_samples(unit * per_completion)

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        if self.policy_loss != "on_policy":
            return self._off_policy_surrogate(dist, cost, n_samples, sampler)
        x = sampler.sample(dist, n_samples)
        kl = None
        if self.kl == "none":
            log_prob = dist.log_prob(x)
        else:  # the token log-probabilities once, for the KL and the score
            log_q = dist.token_log_prob(x)
            log_prob = log_q.sum(-1)
            kl = self.kl_values(log_q if self.kl == "loss" else log_q.detach(),
                                dist.reference_token_log_prob(x))  # [G, *batch, L or 1]
        r = None
        if self.kl == "reward":  # the sequence's KL estimate, subtracted from its reward
            with torch.no_grad():
                r = cost(x) - dist.kl_beta * kl.sum(-1)
        a, _, weigh = self._advantages_of(dist, cost, x, r)
        surrogate = mean_over_samples(weigh(a) * log_prob)
        if self.kl != "loss":
            return surrogate
        if self.kl_level == "sequence":  # one term per completion
            penalty = kl.squeeze(-1)
        else:  # each token's term, aggregated as the token losses are (the weight of a unit advantage)
            penalty = weigh(torch.ones_like(a)) * kl.sum(-1)
        return surrogate - dist.kl_beta * mean_over_samples(penalty)


def micro_batch_tokens(lengths: torch.Tensor, K: int, prompt_dims: int = 0) -> torch.Tensor:
    """The tokens of each completion's micro-batch, ``[G, *batch]``: one estimate's N completions laid
    out prompt by prompt (each prompt's group together, as trainers repeat a prompt G times) and cut
    into K consecutive micro-batches of N / K completions."""
    moved = lengths.movedim(0, -1)  # [*lead, *prompts, G]
    lead = moved.shape[:moved.dim() - prompt_dims - 1]
    flat = moved.reshape(*lead, K, -1)
    return flat.sum(-1, keepdim=True).expand_as(flat).reshape(moved.shape).movedim(-1, 0)


# The presets' labels (conf/estimator/*.yaml), by (center, scale, aggregation).
PRESETS = {
    ("loo", "none", "seq_mean_token_sum"): "rloo",
    ("mean", "group", "seq_mean_token_mean"): "grpo",
    ("mean", "none", "seq_mean_token_sum"): "dr_grpo",
    ("mean", "group", "seq_mean_token_sum"): "grpo_no_length_norm",
    ("mean", "batch", "seq_mean_token_mean"): "grpo_batch_scale",
    ("mean", "group", "token_mean"): "dapo",
    ("mean", "group", "token_mean_microbatch"): "bnpo",
    ("mean", "none", "seq_mean_token_sum_norm"): "dr_grpo_max_length",
    ("mean", "group", "token_sum"): "grpo_token_sum",
    ("none", "none", "seq_mean_token_sum"): "score_function (group)",
    ("none", "batch_whiten", "seq_mean_token_sum"): "reinforce_plus_plus",
    ("mean", "batch_whiten", "seq_mean_token_sum"): "reinforce_plus_plus_baseline",
    ("length_weighted", "none", "seq_mean_token_sum"): "opo",
    ("greedy", "none", "seq_mean_token_sum"): "remax",
    ("mean", "nonzero", "seq_mean_token_sum"): "gpg",
}


# What tests/estimators/test_verl_conformance.py checks against verl's own functions (at this version;
# the test fails if another is installed), for ``conforms_to``: the advantages by (center, scale), the
# aggregations, the policy losses (on_policy: no ratio) and the KL estimators.
VERL_VERSION = "0.9.1"
VERL_ADVANTAGES = {
    ("mean", "group"): "compute_grpo_outcome_advantage", ("mean", "none"): "compute_grpo_outcome_advantage(norm_adv_"
                                                                          "by_std_in_grpo=False)",
    ("loo", "none"): "compute_rloo_outcome_advantage",
    ("none", "batch_whiten"): "compute_reinforce_plus_plus_outcome_advantage",
    ("mean", "batch_whiten"): "compute_reinforce_plus_plus_baseline_outcome_advantage",
    ("length_weighted", "none"): "compute_opo_outcome_advantage", ("mean", "nonzero"): "compute_gpg_outcome_advantage",
    ("greedy", "none"): "compute_remax_outcome_advantage",
}
VERL_AGGREGATIONS = {"seq_mean_token_mean": "seq-mean-token-mean", "seq_mean_token_sum": "seq-mean-token-sum",
                     "seq_mean_token_sum_norm": "seq-mean-token-sum-norm", "token_mean": "token-mean",
                     "token_sum": "token-sum"}
VERL_POLICY_LOSSES = {"on_policy": "", "dual_clip": "compute_policy_loss_vanilla", "gspo": "compute_policy_loss_gspo",
                      "cispo": "compute_policy_loss_cispo", "sapo": "compute_policy_loss_sapo",
                      "geo_mean": "compute_policy_loss_geo_mean"}
VERL_KL = {"k1": "k1", "k2": "k2", "k3": "k3", "k3_plus": "k3+"}
