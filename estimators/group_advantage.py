"""Group baselines of the score function, as used to train language models with verifiable rewards:
RLOO, GRPO and Dr. GRPO are presets of one estimator with three knobs.

The ``n_samples`` samples of one estimate are the group (G completions of each prompt). With the
group's rewards ``r_1..r_G`` and the score ``s_i = grad log q(o_i)`` (a completion's summed token
log-probabilities), the estimate is ``(1/G) sum_i A_i s_i`` (or ``A_i s_i / |o_i|`` with
``length_norm``) where the advantage ``A_i = center(r)_i / scale(r)``.
"""

from __future__ import annotations

import torch

from .base import Estimator, mean_over_samples
from .options import ConfigError, choice, flag, number
from .registry import register


@register
class GroupAdvantage(Estimator):
    r"""Group-normalised advantages (declared biased unless ``center`` is ``loo`` or ``none``,
    ``scale=none`` and ``length_norm=false``).

    .. math:: \hat g = \frac1G\sum_{i=1}^G \frac{A_i}{\ell_i}\,\nabla_\phi\log q(o_i),\qquad
              A_i = \frac{c_i(r)}{s(r) + \epsilon}

    * ``center``: ``mean``: :math:`c_i = r_i - \bar r` (GRPO, Dr. GRPO; the mean includes
      :math:`r_i`, which scales the expected gradient by :math:`(G-1)/G`); ``loo``:
      :math:`c_i = r_i - \frac1{G-1}\sum_{j\ne i} r_j = \frac G{G-1}(r_i - \bar r)` (RLOO: Kool, van Hoof
      & Welling, ICLR workshop 2019; Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style
      Optimization for Learning from Human Feedback in LLMs", ACL 2024); ``none``: :math:`c_i = r_i`.
    * ``scale``: ``group``: :math:`s` = the group's reward standard deviation (sample, ``G - 1`` in the
      denominator, as TRL computes it) (GRPO: Shao et al., "DeepSeekMath", 2024, Eq. 3); ``batch``:
      the standard deviation over the whole batch of one estimate (every prompt's group; the
      ``scale_rewards=batch`` of ms-swift and tinker); ``none``: :math:`s = 1`, :math:`\epsilon = 0`
      (Dr. GRPO: Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective", 2025).
    * ``length_norm``: :math:`\ell_i = |o_i|`, the completion's length in tokens (GRPO's
      :math:`1/|o_i|` token average; needs a distribution that offers ``sequence_lengths``); else
      :math:`\ell_i = 1` (Dr. GRPO, RLOO).
    * ``eps``: added to the standard deviation. A group whose rewards are all equal is centred to
      exactly :math:`c_i = 0` and gets advantage exactly 0, never NaN or rounding, whatever ``eps``.

    The "batch" of ``scale=batch`` is the group and the distribution's trailing prompt dimensions
    (``prompt_dims``, 0 for an ordinary distribution), never its runs or replicates.
    """

    name = "group_advantage"
    summary = "`(1/G) Σ_i A_i ∇log q(o_i) / ℓ_i`, `A_i = center(r)_i / (scale(r) + eps)` over the group of G = `n_samples` (RLOO, GRPO, Dr. GRPO)"
    min_samples = 2
    options_spec = {
        "center": choice("mean", ("mean", "loo", "none"), "mean | loo | none"),
        "scale": choice("group", ("group", "batch", "none"), "group | batch | none"),
        "length_norm": flag(True, "divide each completion's term by its length in tokens"),
        "eps": number(1e-4, minimum=0.0, doc="added to the standard deviation"),
    }

    def setup(self):
        self.requires = frozenset({"sequence_lengths"}) if self.length_norm else frozenset()
        self.biased = not (self.center in ("loo", "none") and self.scale == "none" and not self.length_norm)

    def describe(self):
        name = PRESETS.get((self.center, self.scale, self.length_norm))
        if name is None:
            return super().describe()
        return name if self.scale == "none" or self.eps == 1e-4 else f"{name}(eps={self.eps})"

    def check(self, dist, n_samples, cost=None):
        if n_samples < 2:
            raise ConfigError("n_samples", n_samples, f"{self.describe()} needs a group of n_samples >= 2: the "
                                                      "advantage of a single sample is not defined")
        super().check(dist, n_samples, cost)

    def advantages(self, r: torch.Tensor, prompt_dims: int = 0) -> torch.Tensor:
        """The advantages of rewards ``r`` (``[G, *batch]``, the group first)."""
        G = r.shape[0]
        # A group of equal rewards is centred to exactly 0: r - mean(r) is not, where the mean rounds
        # (G copies of 0.1 in float32), and eps = 0 would then divide that rounding by a zero std.
        equal = (r == r[:1]).all(0, keepdim=True)
        if self.center == "mean":
            c = torch.where(equal, 0.0, r - r.mean(0, keepdim=True))
        elif self.center == "loo":
            c = torch.where(equal, 0.0, (r - r.mean(0, keepdim=True)) * (G / (G - 1)))
        else:
            c = r
        if self.scale == "none":
            return c
        if self.scale == "group":
            std = r.std(0, keepdim=True)
        else:
            dims = [0] + list(range(r.dim() - prompt_dims, r.dim()))
            std = r.std(dims, keepdim=True)
        denom = std + self.eps
        return torch.where(c == 0, torch.zeros_like(c), c / torch.where(denom > 0, denom, torch.ones_like(denom)))

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        x = sampler.sample(dist, n_samples)
        with torch.no_grad():
            r = cost(x)  # [G, *batch]
            weight = self.advantages(r, getattr(dist, "prompt_dims", 0))
            if self.length_norm:
                weight = weight / dist.sequence_lengths(x).to(weight.dtype)
        return mean_over_samples(weight * dist.log_prob(x))


# The presets' labels (conf/estimator/rloo.yaml, grpo.yaml, dr_grpo.yaml, grpo_no_length_norm.yaml,
# grpo_batch_scale.yaml), by (center, scale, length_norm).
PRESETS = {("loo", "none", False): "rloo", ("mean", "group", True): "grpo", ("mean", "none", False): "dr_grpo",
           ("mean", "group", False): "grpo_no_length_norm", ("mean", "batch", True): "grpo_batch_scale",
           ("none", "none", False): "score_function (group)"}
