"""The leave-one-out score function with a second, Taylor-expansion control variate, for discrete
latents (Bernoulli and one-hot categorical): double control variates."""

from __future__ import annotations

import torch

from .base import Estimator, mean_over_samples
from .options import number
from .registry import register


@register
class DoubleControlVariate(Estimator):
    r"""REINFORCE leave-one-out with a double control variate (Titsias & Shi, "Double control
    variates for gradient estimation in discrete latent variable models", AISTATS 2022).

    With samples :math:`x_1..x_K \sim q` (binary vectors or one-hot categories), :math:`m = E_q x`,
    :math:`g_k = \nabla_x f(x_k)` (f's gradient at the sample, f taken as a function of real
    inputs) and :math:`\bar g_{-k}` the mean of the *other* samples' gradients, the second control
    variate of sample k is the first-order Taylor term :math:`c_k = \alpha\,\bar g_{-k}^\top (x_k - m)`
    (its coefficients from the other samples, so its expectation against the score is known); the
    main control variate is the leave-one-out baseline of :math:`h = f + c`:

    .. math:: \hat g = \frac1K\sum_k \Big(h_k - \frac1{K-1}\sum_{j\ne k} h_j\Big)\nabla_\phi\log q(x_k)
              \;-\; \alpha\,\nabla_\phi\big(\bar g^\top m(\phi)\big),\qquad \bar g = \frac1K\sum_k g_k

    (``g`` held fixed in the last term). Unbiased for any :math:`\alpha`: given the other samples,
    :math:`E[c_k\nabla\log q(x_k)] = \alpha\nabla_\phi(\bar g_{-k}^\top m)`, whose mean over k the last
    term removes, and :math:`c_j` (:math:`j \ne k`) is linear in :math:`x_j - m` with mean 0, so it
    adds nothing against :math:`x_k`'s score. ``alpha`` = -1 (the default) subtracts f's linear
    part, the Taylor expansion's own coefficient; 0 is RLOO exactly. The paper learns alpha by
    minimising the estimator's variance during training; here it is fixed, so that an estimate
    depends on its samples only. ``K`` evaluations of f and one backward pass through f per
    estimate (a cost that does not depend on x differentiably gets g = 0: RLOO).

    Chosen over the unordered-set estimator (Kool, van Hoof & Welling, ICLR 2020) for what the
    problems here are: the digits VAE's latent is L independent variables with C^L joint codes, and
    the unordered-set estimator samples *codes* without replacement and needs each set's
    probability, a sum over the K! orders of its codes under a joint distribution without closed-form
    set probabilities (Gumbel-top-k over 4096 codes is the enumeration itself); the double control
    variate needs only f's gradient, which every relaxation estimator here already assumes.
    """

    name = "double_cv"
    summary = ("RLOO on `f + α ḡ₋ₖᵀ(x − E x)` plus `−α ∇(ḡᵀ E x)`: leave-one-out and a Taylor control "
               "variate (Titsias & Shi 2022)")
    families = frozenset({"bernoulli", "categorical"})
    min_samples = 2
    options_spec = {"alpha": number(-1.0, doc="the Taylor term's coefficient (-1: f's linear part; 0: RLOO)")}

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        K = n_samples
        x = sampler.sample(dist, K).detach()  # [K, *batch, *event]
        event = tuple(range(1 + len(dist.batch_shape), x.dim()))
        leaf = x.clone().requires_grad_(True)
        with torch.enable_grad():
            f = cost(leaf)
            grads = torch.autograd.grad(f.sum(), leaf, allow_unused=True) if f.requires_grad else (None,)
        g = torch.zeros_like(x) if grads[0] is None else grads[0].detach()
        f = f.detach()
        m = dist.mean  # with its graph: the last term's gradient
        g_others = (g.sum(0, keepdim=True) - g) / (K - 1)
        over_event = lambda t, dims: t.sum(dims) if dims else t  # noqa: E731 (sum(()) would sum everything)
        h = f + self.alpha * over_event(g_others * (x - m.detach()), event)  # [K, *batch]
        advantage = h - (h.sum(0, keepdim=True) - h) / (K - 1)
        score = mean_over_samples(advantage * dist.log_prob(x))
        correction = over_event(g.mean(0) * m, tuple(d - 1 for d in event))  # [*batch]
        return score - self.alpha * correction
