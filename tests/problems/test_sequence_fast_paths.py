"""The sequence policy's fast paths against the plain computations they replace: token
log-probabilities (normalisers once per table, the samples' dimensions last) and their gradient,
decoding by one index_select a step, the knockout argmax, the alive mask. The plain versions are
written out here, as they were before, so that a change to the fast ones is caught."""

import pytest
import torch

from bench.problems import make_problem
from bench.problems.sequence import END, SequenceDistribution, _TokenLogProb, first_argmax
from estimators import Sampler


def _plain_token_log_prob(dist: SequenceDistribution, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Each token's log-softmax from the step logits gathered out of the table expanded per sample."""
    lead = torch.broadcast_shapes(x.shape[:-1], logits.shape[:-3])
    x = x.expand(*lead, dist.length)
    prev = torch.cat([torch.full_like(x[..., :1], dist.vocab), x[..., :-1]], -1)
    table = logits.expand(*lead, *logits.shape[-3:])
    step = table.gather(-2, prev[..., None, None].expand(*prev.shape, 1, dist.vocab)).squeeze(-2)
    return torch.log_softmax(step, -1).gather(-1, x.unsqueeze(-1)).squeeze(-1) * _plain_alive(x)


def _plain_alive(x: torch.Tensor) -> torch.Tensor:
    ended = (x[..., :-1] == END).to(torch.int8).cummax(-1).values.bool()
    return ~torch.cat([torch.zeros_like(x[..., :1], dtype=torch.bool), ended], -1)


def _plain_decode(dist: SequenceDistribution, shape: torch.Size, noise: torch.Tensor | None) -> torch.Tensor:
    table = dist.logits.detach().expand(*shape, *dist.logits.shape[-3:])
    prev = torch.full(shape, dist.vocab, dtype=torch.long)
    tokens = []
    for t in range(dist.length):
        logits = table[..., t, :, :].gather(-2, prev[..., None, None].expand(*shape, 1, dist.vocab)).squeeze(-2)
        token = (logits if noise is None else logits + noise[..., t, :]).argmax(-1)
        token = torch.where(prev == END, torch.full_like(token, END), token)
        tokens.append(token)
        prev = token
    return torch.stack(tokens, -1)


def _replicated(p, reps: int, scale: float = 1.0) -> torch.Tensor:
    """A table with a leading replicate dimension whose replicates differ (as a trained one's may)."""
    logits = p.encode(p.init_params("cpu", torch.float64))["logits"]
    g = torch.Generator().manual_seed(5)
    return (scale * (logits + torch.randn(reps, *logits.shape, generator=g, dtype=torch.float64))).requires_grad_(True)


@pytest.mark.parametrize("scale", [1.0, 100.0])  # 100: logits whose exp overflows without the shift
@pytest.mark.parametrize("samples", [(), (3,), (2, 3)])
def test_token_log_prob_and_its_gradient_match_the_plain_log_softmax(samples, scale):
    p = make_problem("sequence_policy", {"max_length": 4, "vocab": 3})
    logits = _replicated(p, 5, scale)
    dist = p.distribution({"logits": logits})
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, p.vocab, (*samples, *dist.batch_shape, p.max_length), generator=g)  # not padded
    weights = torch.randn(x.shape, generator=g, dtype=torch.float64)
    fast, plain = dist.token_log_prob(x), _plain_token_log_prob(dist, x, logits)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    (g_fast,) = torch.autograd.grad((fast * weights).sum(), logits)
    (g_plain,) = torch.autograd.grad((plain * weights).sum(), logits)
    torch.testing.assert_close(g_fast, g_plain, rtol=1e-10, atol=1e-12)


def test_token_log_prob_broadcasts_a_shared_table_and_its_gradient_passes_gradcheck():
    p = make_problem("sequence_policy", {"n_prompts": 2, "max_length": 3, "vocab": 3})
    table = p.encode(p.init_params("cpu", torch.float64))["logits"].detach().requires_grad_(True)  # [P, L, V+1, V]
    x = Sampler.seeded(0, "cpu").sample(p.distribution({"logits": table}), 4)  # [4, P, L]
    torch.testing.assert_close(p.distribution({"logits": table}).token_log_prob(x),
                               _plain_token_log_prob(p.distribution({"logits": table}), x, table))
    V, L = p.vocab, p.max_length
    prev = torch.cat([torch.full_like(x[..., :1], V), x[..., :-1]], -1)
    row = (torch.arange(L) * (V + 1) + prev).movedim(0, -2).reshape(p.n_prompts, -1)  # [P, 4 L]
    token = row * V + x.movedim(0, -2).reshape(p.n_prompts, -1)
    flat = table.flatten(-3, -2)
    assert torch.autograd.gradcheck(lambda t: _TokenLogProb.apply(t, token, row)[0], (flat,))


def test_a_second_derivative_through_the_token_log_probabilities_raises():
    p = make_problem("sequence_policy", {"max_length": 3, "vocab": 3})
    logits = _replicated(p, 2)
    dist = p.distribution({"logits": logits})
    x = Sampler.seeded(0, "cpu").sample(dist, 2)
    (g,) = torch.autograd.grad(dist.log_prob(x).sum(), logits, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.square().sum(), logits)


@pytest.mark.parametrize("vocab", [2, 3, 4, 7])
def test_decoding_matches_the_plain_loop_on_the_same_noise(vocab):
    p = make_problem("sequence_policy", {"vocab": vocab, "max_length": 4})
    dist = p.distribution({"logits": _replicated(p, 6).detach().float()})
    for samples in [(), (3,), (2, 3)]:
        shape = torch.Size(samples) + dist.batch_shape
        noise = Sampler.seeded(2, "cpu").gumbel(shape + (p.max_length, vocab), dist.logits)
        assert torch.equal(dist._decode(shape, noise), _plain_decode(dist, shape, noise))
    assert torch.equal(dist.greedy(), _plain_decode(dist, dist.batch_shape, None))


@pytest.mark.parametrize("width", range(1, 9))
def test_the_knockout_argmax_is_argmax_ties_included(width):
    g = torch.Generator().manual_seed(width)
    ties = torch.randint(0, 3, (4000, width), generator=g).float()  # many ties: the first index wins
    assert torch.equal(first_argmax(ties), ties.argmax(-1))
    spread = torch.randn(5, 7, width, generator=g)
    assert torch.equal(first_argmax(spread), spread.argmax(-1))


def test_alive_matches_the_cumulative_maximum_on_unpadded_tokens():
    x = torch.randint(0, 3, (500, 4, 6), generator=torch.Generator().manual_seed(3))
    assert torch.equal(SequenceDistribution.alive(x), _plain_alive(x))
