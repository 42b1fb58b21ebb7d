"""A small sequence policy whose every completion can be enumerated: the setting of RLOO, GRPO and
Dr. GRPO (language models trained with verifiable rewards), with exact gradients.

``problem.n_prompts`` prompts; for each, an autoregressive categorical policy over
``problem.vocab`` tokens (token 0 is the end token) writes at most ``problem.max_length`` tokens.
The next token's logits come from a small network of (prompt, position, previous token):
``W^T tanh(E_prompt[p] + E_position[t] + E_previous[prev]) + b``, whose weights are theta
(initialised from ``problem.init_seed``); phi is the table of logits for every context. A
completion stops at the end token (counted in its length) or after ``max_length`` tokens.

Rewards (maximised): ``verifier`` gives 1 when the completion is in the prompt's accepted set, else
0 (sparse and binary, the RLVR case); ``match`` gives the fraction of the ``max_length`` positions
equal to the prompt's target sequence (positions after the end count as the end token). The
accepted sets are drawn (``problem.data_seed``) so that the prompts differ in difficulty: at theta0
their success probabilities are close to ``linspace(0.05, 0.9, n_prompts)``. ``problem.length_penalty``
subtracts ``length_penalty * length / max_length`` from either reward, so that length matters.
``problem.behaviour_shift`` makes the off-policy losses' pi_old a stale policy: the logits moved by
that times a fixed standard normal table (``problem.behaviour_seed``); the objective stays E_q[r].
``problem.behaviour_steps=k`` makes pi_old what a trainer's is, the policy k optimiser steps
earlier: theta0 is the initialisation after k Adam steps (``problem.behaviour_lr``) on the exact
objective, pi_old the initialisation's policy.
``problem.kl_beta`` regularises the objective towards a reference policy, ``pi_ref`` (the same
network initialised from ``problem.ref_seed``): ``E_q[r] - kl_beta KL(q || pi_ref)`` per prompt,
the KL by enumeration too; the distribution then offers the reference's token log-probabilities
(the group estimators' ``estimator.kl``), and an estimator that ignores the KL term is measured
biased by it.

Exact: every completion of every prompt is enumerated (``sum_{t<L} (V-1)^t + (V-1)^L`` of them: 364
at the defaults) and ``E[r] = sum_o q(o) r(o)``, differentiated by autograd. ``vocab ** max_length``
may be at most 4^10 (the table of completions' codes): vocab 3 and max_length 10 is 2,047
completions (exact gradient 1.2 ms here), vocab 4 and max_length 10 is 88,573 (58 ms, and 9 s to
draw the accepted sets), against 0.5 ms at the defaults.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import distributions as D
from torch.distributions import constraints

from estimators.options import ConfigError, choice, integer, number
from estimators.sampling import Sampler

from .base import Problem
from .registry import register_problem

END = 0
MAX_CODES = 4**10  # vocab ** max_length: the code table of every completion (8 MiB)


class _TokenLogProb(torch.autograd.Function):
    """``log_softmax(table)`` at the given entries, without forming the log-softmax of the whole
    table: ``table[token] - logsumexp(table[row])``, with the backward ``scatter(g) - softmax(row)
    scatter_row(g)``. ``table`` ``[*batch, rows, V]``; ``token`` ``[*batch, K]`` indexes its flat
    rows x V entries, ``row`` ``[*batch, K]`` its rows. torch's CPU log-softmax over rows as short as
    a vocabulary of 4 is dominated by its per-row overhead (8M values: 65 ms forward, 97 ms with the
    backward; about a third of that here). Once differentiable: a second derivative through it
    raises instead of coming out wrong."""

    @staticmethod
    def forward(table, token, row):
        top = table.amax(-1, keepdim=True)
        lse = (table - top).exp_().sum(-1).log_() + top.squeeze(-1)  # [*batch, rows]
        return table.flatten(-2).gather(-1, token) - lse.gather(-1, row), lse

    @staticmethod
    def setup_context(ctx, inputs, output):
        table, token, row = inputs
        ctx.save_for_backward(table, token, row, output[1])
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g, _):
        table, token, row, lse = ctx.saved_tensors
        # out of place: a backward under vmap (is_grads_batched: the optimal baseline's per-sample
        # gradients) batches g but not the zeros it would scatter into
        per_row = torch.zeros_like(lse).scatter_add(-1, row, g)
        grad = -(table - lse.unsqueeze(-1)).exp_() * per_row.unsqueeze(-1)
        flat = grad.reshape(*grad.shape[:-2], -1).scatter_add(-1, token, g)
        return flat.reshape(grad.shape), None, None


def first_argmax(z: torch.Tensor) -> torch.Tensor:
    """``z.argmax(-1)`` (the first index of the largest value) by a knockout of neighbouring pairs:
    log2(V) rounds of elementwise comparisons, 2x faster than torch's reduction over a last
    dimension of 4 (where its per-row overhead dominates). On a tie the left one, whose indices are
    the lower, goes through, so ties resolve as argmax's do (for values that are not NaN)."""
    index = None
    while z.shape[-1] > 1:
        if z.shape[-1] % 2:  # an odd one out meets -inf, which never wins
            z = torch.cat([z, z.new_full((*z.shape[:-1], 1), float("-inf"))], -1)
            index = None if index is None else torch.cat([index, index[..., -1:]], -1)
        pairs = z.unflatten(-1, (-1, 2))
        right = pairs[..., 1] > pairs[..., 0]
        if index is None:  # the first round: each pair's own indices
            index = torch.arange(0, z.shape[-1], 2, device=z.device) + right
        else:
            candidates = index.unflatten(-1, (-1, 2))
            index = torch.where(right, candidates[..., 1], candidates[..., 0])
        z = torch.maximum(pairs[..., 0], pairs[..., 1])
    return torch.zeros(z.shape[:-1], dtype=torch.long, device=z.device) if index is None else index.squeeze(-1)


def _samples_last(index: torch.Tensor, n_sample: int) -> torch.Tensor:
    """``index [*samples, *batch, k]`` as ``[*batch, samples x k]``: the layout in which a gather
    from a per-batch table needs no copy of the table per sample (nor its gradient one)."""
    moved = index.movedim(tuple(range(n_sample)), tuple(range(-n_sample - 1, -1)))
    return moved.reshape(*index.shape[n_sample:-1], -1)


def _samples_first(values: torch.Tensor, sample_shape: torch.Size, k: int) -> torch.Tensor:
    """The inverse of :func:`_samples_last`: ``[*batch, samples x k]`` as ``[*samples, *batch, k]``."""
    n = len(sample_shape)
    values = values.reshape(*values.shape[:-1], *sample_shape, k)
    return values.movedim(tuple(range(-n - 1, -1)), tuple(range(n)))


class SequenceDistribution(D.Distribution):
    """Completions of every prompt from a table of logits ``[*batch, P, L, V + 1, V]`` (the previous
    token ``V`` is the start). Batch shape ``[*batch, P]`` (prompts are independent), event shape
    ``[L]``: the tokens, padded with the end token after it. It offers ``sequence_lengths`` (each
    completion's number of tokens, the end token included), ``greedy`` (each prompt's greedy
    completion) and one trailing prompt dimension. With ``reference_logits`` (a reference policy's
    table, without gradient) it also offers ``reference_policy``: ``token_log_prob`` and
    ``reference_token_log_prob`` per token, and ``kl_beta``, the objective's KL coefficient.
    ``behaviour()`` is the policy the samples of an off-policy loss come from, pi_old: this one,
    detached, its logits moved by ``behaviour_offset`` where given (a stale policy)."""

    arg_constraints: dict = {}
    has_rsample = False
    capabilities = frozenset({"sequence_lengths", "sequence", "greedy", "behaviour_policy"})
    prompt_dims = 1  # trailing batch dimensions that are prompts of one estimate (group baselines pool them)

    def __init__(self, logits: torch.Tensor, reference_logits: torch.Tensor | None = None, kl_beta: float = 0.0,
                 behaviour_offset: torch.Tensor | None = None):
        self.logits, self.reference_logits, self.kl_beta = logits, reference_logits, kl_beta
        self.behaviour_offset = behaviour_offset
        self.length, self.vocab = logits.shape[-3], logits.shape[-1]
        if reference_logits is not None:
            self.capabilities = type(self).capabilities | {"reference_policy"}
        super().__init__(logits.shape[:-3], torch.Size((self.length,)), validate_args=False)

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return {"logits": self.logits}

    @property
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.vocab - 1), 1)

    def expand(self, batch_shape, _instance=None):
        return SequenceDistribution(self.logits.expand(*batch_shape, *self.logits.shape[-3:]), self.reference_logits,
                                    self.kl_beta, self.behaviour_offset)

    def behaviour(self) -> "SequenceDistribution":
        """pi_old: the policy detached, its logits moved by ``behaviour_offset`` where given."""
        old = self.logits.detach()
        if self.behaviour_offset is not None:
            old = old + self.behaviour_offset.to(old)
        return SequenceDistribution(old)

    def _step_logits(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """The logits (of ``logits``, default the policy's table) of each position's token given the
        previous one: ``[*lead, L, V]``."""
        logits = self.logits if logits is None else logits
        lead = torch.broadcast_shapes(x.shape[:-1], self.batch_shape)
        x = x.expand(*lead, self.length)
        prev = torch.cat([torch.full_like(x[..., :1], self.vocab), x[..., :-1]], -1)  # [..., L]
        table = logits.expand(*lead, *logits.shape[-3:])  # [..., L, V+1, V]
        index = prev[..., None, None].expand(*prev.shape, 1, self.vocab)
        return table.gather(-2, index).squeeze(-2), x

    def token_log_prob(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Each token's log-probability, 0 after the end token: ``[*lead, L]``. The table's
        normalisers are computed once (not per sample), and the gather takes the samples'
        dimensions last, so that the gradient is a scatter into one table, not into a table per
        sample (which the backward would fill with zeros and then sum over the samples)."""
        logits = self.logits if logits is None else logits
        lead = torch.broadcast_shapes(x.shape[:-1], self.batch_shape)
        x = x.expand(*lead, self.length)
        V = self.vocab
        prev = torch.cat([torch.full_like(x[..., :1], V), x[..., :-1]], -1)
        row = torch.arange(self.length, device=x.device) * (V + 1) + prev  # the context's row: [*lead, L]
        n_sample = len(lead) - (logits.dim() - 3)  # the leading dimensions the table does not have
        batch = lead[n_sample:]
        table = logits.expand(*batch, *logits.shape[-3:]).flatten(-3, -2)  # [*batch, L (V+1), V]
        row_last = _samples_last(row, n_sample)
        picked = _TokenLogProb.apply(table, row_last * V + _samples_last(x, n_sample), row_last)[0]
        return _samples_first(picked, lead[:n_sample], self.length) * self.alive(x)

    def reference_token_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Each token's log-probability under the reference policy (no gradient): ``[*lead, L]``."""
        return self.token_log_prob(x, self.reference_logits.to(self.logits)).detach()

    @staticmethod
    def alive(x: torch.Tensor) -> torch.Tensor:
        """Which positions are part of the completion (up to and including the end token). A loop
        over the (at most 10) positions: torch's cummax along so short a last dimension ran 7x slower."""
        end = x == END
        ended = torch.zeros_like(end[..., 0])
        columns = []
        for t in range(x.shape[-1]):
            columns.append(~ended)
            ended = ended | end[..., t]
        return torch.stack(columns, -1)

    def sequence_lengths(self, x: torch.Tensor) -> torch.Tensor:
        return self.alive(x).sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.token_log_prob(x).sum(-1)

    def _decode(self, shape: torch.Size, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Token by token, each the argmax of its logits given the previous token, plus
        ``noise[..., t, :]`` where given (Gumbel-max sampling); after the end token, padding.
        Each step takes its samples' rows of V logits from the table by one ``index_select``
        (a third faster than a gather of every logit from the table expanded over the samples)."""
        with torch.no_grad():
            n_sample = len(shape) - len(self.batch_shape)
            batch, V = shape[n_sample:], self.vocab
            rows = self.length * (V + 1)  # a table's rows: (position, previous token)
            table = self.logits.detach().expand(*batch, *self.logits.shape[-3:]).reshape(-1, V)  # [batch x rows, V]
            first = torch.arange(batch.numel(), device=table.device).view(batch) * rows  # each table's first row
            prev = torch.full(shape, V, dtype=torch.long, device=table.device)
            tokens = []
            for t in range(self.length):
                logits = table.index_select(0, (first + t * (V + 1) + prev).flatten()).view(*shape, V)
                token = first_argmax(logits if noise is None else logits + noise[..., t, :])
                token = token.masked_fill_(prev == END, END)
                tokens.append(token)
                prev = token
            return torch.stack(tokens, -1)

    def sample_with(self, sampler, sample_shape=torch.Size()) -> torch.Tensor:
        """Gumbel-max token by token, from the sampler's uniforms (drawn at once)."""
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            return self._decode(shape, sampler.gumbel(shape + (self.length, self.vocab), self.logits))

    def greedy(self) -> torch.Tensor:
        """Each prompt's greedy completion (the most likely token at every step): ``[*batch, L]``."""
        return self._decode(self.batch_shape)

    def sample(self, sample_shape=torch.Size()):
        return self.sample_with(Sampler(), sample_shape)


def all_completions(vocab: int, length: int) -> torch.Tensor:
    """Every completion, padded with the end token: ``[M, L]``."""
    words = []
    for t in range(length + 1):
        for prefix in itertools.product(range(1, vocab), repeat=t):
            if t < length:
                words.append(list(prefix) + [END] * (length - t))
            else:
                words.append(list(prefix))
    return torch.tensor(words, dtype=torch.long)


@register_problem
class SequencePolicy(Problem):
    name = "sequence_policy"
    summary = ("completions of `n_prompts` prompts, at most `max_length` tokens of `vocab` (token 0 ends), "
               "reward `verifier` (1 if accepted) or `match`; every completion enumerated (a reward: maximised)")
    maximize = True
    options_spec = {
        "n_prompts": integer(4, minimum=1), "vocab": integer(4, minimum=2, maximum=8),
        "max_length": integer(5, minimum=1, maximum=10), "hidden": integer(8, minimum=1),
        "reward": choice("verifier", ("verifier", "match"), "verifier: 1 if accepted, else 0 | match: fraction of "
                                                             "positions equal to the target"),
        "length_penalty": number(0.0, minimum=0.0, doc="subtracted from the reward times length / max_length"),
        "kl_beta": number(0.0, minimum=0.0, doc="the objective is E[r] - kl_beta KL(q || pi_ref)"),
        "ref_seed": integer(1, minimum=0, doc="pi_ref: the policy network initialised from this seed"),
        "behaviour_shift": number(0.0, minimum=0.0, doc="pi_old's logits: the policy's plus this times a fixed "
                                                         "standard normal table (off-policy losses' samples)"),
        "behaviour_seed": integer(2, minimum=0, doc="the seed of that table"),
        "behaviour_steps": integer(0, minimum=0, maximum=1000,
                                   doc="pi_old is the policy this many Adam steps (exact gradient) before theta0"),
        "behaviour_lr": number(0.01, minimum=0.0, doc="the learning rate of those steps"),
        "init_seed": integer(0, minimum=0), "data_seed": integer(0, minimum=0),
    }

    def setup(self):
        P, L, V = self.n_prompts, self.max_length, self.vocab
        if V**L > MAX_CODES:
            raise ConfigError("problem.max_length", L, f"with problem.vocab={V} makes {V}^{L} token codes; the "
                                                       f"enumeration allows at most {MAX_CODES:,} (4^10)")
        self._theta0 = self._initial_theta(self.init_seed)
        # pi_old of the off-policy losses: the policy's logits moved along a fixed random table.
        g = torch.Generator().manual_seed(self.behaviour_seed)
        self._behaviour_offset = (self.behaviour_shift * torch.randn(P, L, V + 1, V, generator=g, dtype=torch.float64)
                                  if self.behaviour_shift else None)
        # The reference policy of the KL term: another initialisation of the same network.
        self._reference_logits = self.encode(self._initial_theta(self.ref_seed))["logits"] if self.kl_beta else None
        self.completions = all_completions(V, L)  # [M, L]
        # Each completion's token log-probabilities, as indices into a prompt's flat [L, V+1, V]
        # table of log-softmaxes, and which positions count (up to the end token).
        prev = torch.cat([torch.full_like(self.completions[:, :1], V), self.completions[:, :-1]], 1)
        self._flat_index = (torch.arange(L) * (V + 1) + prev) * V + self.completions  # [M, L]
        self._alive = SequenceDistribution.alive(self.completions).double()  # [M, L]
        self._place = V ** torch.arange(L - 1, -1, -1)  # a completion's code: its tokens in base V
        self._index = torch.full((V**L,), -1, dtype=torch.long)  # code -> index among the completions
        self._index[(self.completions * self._place).sum(-1)] = torch.arange(len(self.completions))
        # log pi_ref(o) of every completion, per prompt [P, M]: constant, so enumerated once.
        self._reference_log_q = (None if self._reference_logits is None else
                                 self._completion_log_probs(SequenceDistribution(self._reference_logits)))
        d = torch.Generator().manual_seed(self.data_seed)
        with torch.no_grad():
            q = self.distribution(self.encode(self._theta0)).log_prob(self.completions[:, None, :]).exp()  # [M, P]
        if self.reward == "verifier":
            targets = torch.linspace(0.05, 0.9, P) if P > 1 else torch.tensor([0.5])
            accepted = torch.zeros(P, len(self.completions), dtype=torch.float64)
            for p in range(P):
                mass = 0.0
                for m in torch.randperm(len(self.completions), generator=d).tolist():
                    if mass + float(q[m, p]) <= targets[p] + 1e-12:
                        accepted[p, m] = 1.0
                        mass += float(q[m, p])
            self.rewards = self._accepted = accepted  # [P, M]
        else:
            self.target = torch.randint(1, V, (P, L), generator=d)
            self.rewards = (self.completions[None, :, :] == self.target[:, None, :]).double().mean(-1)
        raw = self.rewards
        if self.length_penalty:
            self.rewards = self.rewards - self.length_penalty * self._alive.sum(-1) / L
        if self.behaviour_steps:
            self._advance_past_behaviour()
            with torch.no_grad():
                q = self.distribution(self.encode(self._theta0)).log_prob(self.completions[:, None, :]).exp()
        self._success0 = (q.T * raw).sum(1)  # each prompt's expected reward (success: verifier) at theta0

    def _advance_past_behaviour(self):
        """pi_old as a trainer's stale rollout policy: theta0 becomes the initialisation advanced by
        ``behaviour_steps`` Adam steps on the exact objective (``behaviour_lr``), and pi_old is the
        initialisation's policy, kept as the offset of its logits from theta0's (added to any
        ``behaviour_shift`` table). The objective and its exact gradient are then those at the new
        theta0; in training the offset stays fixed (a set shift of the logits from there on)."""
        start = {k: v.clone() for k, v in self._theta0.items()}
        theta = {k: v.clone().requires_grad_(True) for k, v in start.items()}
        optimiser = torch.optim.Adam(theta.values(), lr=self.behaviour_lr)
        for _ in range(self.behaviour_steps):
            optimiser.zero_grad()
            (-self.expected_cost(self.distribution(self.encode(theta))).sum()).backward()  # a reward: ascend
            optimiser.step()
        self._theta0 = {k: v.detach() for k, v in theta.items()}
        with torch.no_grad():
            offset = self.encode(start)["logits"] - self.encode(self._theta0)["logits"]
        self._behaviour_offset = offset if self._behaviour_offset is None else self._behaviour_offset + offset

    def _initial_theta(self, seed: int) -> dict[str, torch.Tensor]:
        P, L, V, h = self.n_prompts, self.max_length, self.vocab, self.hidden
        g = torch.Generator().manual_seed(seed)
        return {
            "prompt_embedding": torch.randn(P, h, generator=g, dtype=torch.float64),
            "position_embedding": torch.randn(L, h, generator=g, dtype=torch.float64),
            "previous_embedding": torch.randn(V + 1, h, generator=g, dtype=torch.float64),
            "output.weight": torch.randn(h, V, generator=g, dtype=torch.float64) / math.sqrt(h),
            "output.bias": torch.zeros(V, dtype=torch.float64),
        }

    def info(self):
        return {"success_at_theta0": [round(float(v), 3) for v in self._success0]}

    def init_params(self, device, dtype):
        return {k: v.to(device=device, dtype=dtype).clone() for k, v in self._theta0.items()}

    def encode(self, theta):
        """The logits of every (prompt, position, previous token) context: ``[*lead, P, L, V+1, V]``."""
        e = (theta["prompt_embedding"][..., :, None, None, :] + theta["position_embedding"][..., None, :, None, :]
             + theta["previous_embedding"][..., None, None, :, :])
        h = torch.tanh(e)
        return {"logits": h @ theta["output.weight"][..., None, None, :, :] + theta["output.bias"][..., None, None, None, :]}

    def distribution(self, phi):
        logits = phi["logits"]
        like = lambda t: None if t is None else t.to(device=logits.device, dtype=logits.dtype)  # noqa: E731
        return SequenceDistribution(logits, like(self._reference_logits), self.kl_beta, like(self._behaviour_offset))

    def _rewards(self, like):
        return self.rewards.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float64)

    def cost(self, x):
        """The reward of each prompt's completion, in float64 (the run's cost casts it to the run's
        dtype): ``[*lead, P, L] -> [*lead, P]``."""
        if self.reward == "match":
            target = self.target.to(x.device)
            r = (x == target).to(torch.float64).mean(-1)
            if self.length_penalty:
                r = r - self.length_penalty * SequenceDistribution.alive(x).sum(-1).to(r.dtype) / self.max_length
            return r
        index = self._index.to(x.device)[(x * self._place.to(x.device)).sum(-1)]  # [*lead, P]
        rewards = self.rewards.to(x.device)  # [P, M]
        P = self.n_prompts
        flat = index.reshape(-1, P)
        return rewards.T.gather(0, flat).reshape(index.shape)

    def _completion_log_probs(self, dist) -> torch.Tensor:
        """``log q(o)`` of every completion ``o``, per prompt: ``[*batch, P, M]``."""
        log_soft = torch.log_softmax(dist.logits, -1).flatten(-3)  # [*batch, P, L*(V+1)*V]
        index = self._flat_index.to(log_soft.device).reshape(-1)  # [M*L]
        per_token = log_soft[..., index].unflatten(-1, self._flat_index.shape)  # [*batch, P, M, L]
        return (per_token * self._alive.to(per_token)).sum(-1)

    def expected_cost(self, dist):
        """``sum_o q(o) r(o)`` over every completion ``o``, per prompt, less ``kl_beta KL(q || pi_ref)``
        where set: ``[*batch, P]``."""
        log_q = self._completion_log_probs(dist)
        value = (log_q.exp() * self._rewards(log_q)).sum(-1)
        return value - self.kl_beta * self._kl(log_q) if self.kl_beta else value

    def _kl(self, log_q: torch.Tensor) -> torch.Tensor:
        """``KL(q || pi_ref) = sum_o q(o) (log q(o) - log pi_ref(o))`` per prompt, by enumeration."""
        log_ref = self._reference_log_q.to(log_q)
        return (log_q.exp() * (log_q - log_ref)).sum(-1)

    def curve_metrics(self, dist):
        """The expected completion length in tokens (end token included), ``sum_o q(o) len(o)``, and
        the probability of a correct completion (verifier reward), per prompt."""
        log_q = self._completion_log_probs(dist)
        q = log_q.exp()
        metrics = {"mean_length": (q * self._alive.sum(-1).to(q)).sum(-1)}
        if self.reward == "verifier":
            metrics["success"] = (q * self._accepted.to(q)).sum(-1)
        if self.kl_beta:
            metrics["kl"] = self._kl(log_q)
        return metrics

    def optimum(self):
        return float(self.rewards.max(1).values.sum())

    def phi_components(self) -> dict[str, torch.Tensor]:
        """phi coordinates that belong to each prompt (for its share of the update)."""
        per = self.max_length * (self.vocab + 1) * self.vocab
        return {f"prompt {p}": torch.arange(p * per, (p + 1) * per) for p in range(self.n_prompts)}
