r"""``digits_vae``: a discrete VAE on scikit-learn's 8x8 digits, its exact ELBO and gradient by
enumerating the codes (the setting of the REBAR, RELAX, DisARM and ReinMax papers, small enough to
be exact, as ReinMax's Sec. 6 enumerates C^L < 16384 codes on real data).

Data: ``load_digits`` (1797 images, shipped inside the scikit-learn wheel: nothing is downloaded),
binarised at half intensity (pixel > 8 of 16), split once by a fixed permutation (seed 0) into 1437
training and 360 test images; ``problem.n_data`` keeps the first N training images (the objective
sums over them).

Model: a latent ``z`` of L independent bits (``latent=bernoulli``; L = ``variables``) or L
independent categorical variables of C = ``classes`` classes (``latent=categorical``, one-hot),
a uniform prior ``p(z)``, a Bernoulli decoder ``p(x | z) = prod_pixels Bernoulli(sigmoid(dec(z)))``
and an amortised factorised encoder ``q(z | x_n) = prod_l q_l(z_l | enc(x_n))``; ``enc`` and ``dec``
are linear or have one tanh hidden layer of ``hidden`` units (``encoder``, ``decoder``).

theta is the encoder's weights (what the estimators' gradients train); phi is the logits of every
image's ``q`` (the distribution's batch is the N images, its event the L variables). The cost is the
reconstruction term ``f_n(z) = -log p(x_n | z) = sum_pixels softplus(l) - x l`` with
``l = dec(z)``; the rest of the negative ELBO, ``KL(q(.|x_n) || p) = L log K - H(q(.|x_n))`` (K = 2
or C), is in closed form and not estimated (:meth:`DigitsVAE.analytic_cost`; as the KL term of
``bayes_logreg``): ``-ELBO = sum_n E_q[f_n] + KL_n``. The decoder is the cost's own parameters
(:meth:`DigitsVAE.model_parameters`): fixed (from ``init_seed``) while an estimator is measured;
``bench.train`` trains it beside the encoder by its exact gradient (the same enumeration), so the
training curves differ only by the encoder's gradient estimator.

Exact: with the codes enumerated (``K^L <= MAX_CODES``), ``E_q[f_n] = sum_z q(z | x_n) f_n(z)``,
matrix products: ``log q`` of every (image, code) from the logits times the codes, the decoder
on every code, and ``f`` of every (code, image) from the decoded codes times the images:
``K^L (N (w + 64) + 64 w)`` multiply-adds with ``w`` = L (bits) or L C (one-hot blocks), 2.3e7
for 4096 codes and 64 images (a linear decoder); it grows as K^L, so the codes are bounded. Tested against a loop over codes
with ``torch.distributions``' own ``log_prob``, against Monte Carlo and against finite differences.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import distributions as D

from estimators.options import ConfigError, choice, integer

from .base import Problem
from .registry import register_problem

MAX_CODES = 2**14  # the enumeration's codes (ReinMax's bound on C^L)
N_TRAIN = 1437  # of load_digits' 1797 images, after a fixed permutation; the other 360 are the test set
PIXELS = 64


@lru_cache(maxsize=1)
def binarised_digits() -> tuple[np.ndarray, np.ndarray]:
    """The training and test images, ``[1437, 64]`` and ``[360, 64]``, in {0, 1}."""
    from sklearn.datasets import load_digits

    images = (load_digits().data > 8).astype(np.float64)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order[:N_TRAIN]], images[order[N_TRAIN:]]


def _layers(sizes: list[int], generator: torch.Generator, prefix: str) -> dict[str, torch.Tensor]:
    """Weights ``N(0, 1/fan_in)`` and zero biases of a chain of layers, float64."""
    out = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        tag = f"{prefix}{i}" if len(sizes) > 2 else prefix
        out[f"{tag}_w"] = torch.randn(a, b, generator=generator, dtype=torch.float64) / math.sqrt(a)
        out[f"{tag}_b"] = torch.zeros(b, dtype=torch.float64)
    return out


def _forward(params: dict[str, torch.Tensor], x: torch.Tensor, prefix: str) -> torch.Tensor:
    """The chain of layers on ``x`` (``[..., S, N, in]``) with weights ``[S, in, out]`` (S runs, or
    1 for all): tanh between layers, linear output."""
    names = sorted(k[:-2] for k in params if k.startswith(prefix) and k.endswith("_w"))
    for i, name in enumerate(names):
        x = x @ params[f"{name}_w"] + params[f"{name}_b"].unsqueeze(-2)
        if i < len(names) - 1:
            x = torch.tanh(x)
    return x


@register_problem
class DigitsVAE(Problem):
    name = "digits_vae"
    summary = ("a discrete VAE on scikit-learn's binarised 8x8 digits (L bits or L categoricals), f = -log p(x|z), "
               "exact ELBO by enumerating the codes")
    options_spec = {
        "latent": choice("bernoulli", ("bernoulli", "categorical"), "bernoulli | categorical"),
        "variables": integer(6, minimum=1, doc="L: latent bits, or categorical variables"),
        "classes": integer(4, minimum=2, doc="C, the classes of each categorical variable (latent=categorical)"),
        "encoder": choice("linear", ("linear", "mlp"), "linear | mlp (one tanh hidden layer)"),
        "decoder": choice("linear", ("linear", "mlp"), "linear | mlp (one tanh hidden layer)"),
        "hidden": integer(32, minimum=1, doc="units of a hidden layer"),
        "n_data": integer(8, minimum=1, maximum=N_TRAIN, doc="the first N training images"),
        "init_seed": integer(0, minimum=0, doc="the encoder's and decoder's initial weights"),
    }

    def setup(self):
        self.k = 2 if self.latent == "bernoulli" else self.classes
        if self.k**self.variables > MAX_CODES:
            raise ConfigError("problem.variables", self.variables,
                              f"{self.k}^{self.variables} codes are more than the {MAX_CODES} the exact ELBO "
                              f"enumerates (take fewer variables{'' if self.latent == 'bernoulli' else ' or classes'})")
        train, test = binarised_digits()
        self.x_train = torch.tensor(train[: self.n_data])
        self.x_test = torch.tensor(test)
        self.width = self.variables * (1 if self.latent == "bernoulli" else self.classes)  # enc's output, dec's input
        g = torch.Generator().manual_seed(self.init_seed)
        hidden = [self.hidden] if self.encoder == "mlp" else []
        self._theta0 = _layers([PIXELS, *hidden, self.width], g, "enc")
        hidden = [self.hidden] if self.decoder == "mlp" else []
        decoder = _layers([self.width, *hidden, PIXELS], g, "dec")
        # The decoder's output bias starts at the training pixels' log-odds (the usual start).
        mean = self.x_train.mean(0).clamp(0.01, 0.99)
        decoder[sorted(k for k in decoder if k.endswith("_b"))[-1]] = torch.log(mean / (1 - mean))
        self.model = {k: v.unsqueeze(0) for k, v in decoder.items()}  # [1, ...]: one decoder for every run
        self._codes = None

    # theta, phi, q
    def init_params(self, device, dtype):
        return {k: v.to(device, dtype) for k, v in self._theta0.items()}

    def logits(self, theta: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The encoder's logits for images ``x`` ``[N, 64]``: ``[S, N, L]`` (or ``[S, N, L, C]``)."""
        first = next(iter(theta.values()))
        out = _forward(theta, x.to(first.device, first.dtype), "enc")
        return out if self.latent == "bernoulli" else out.unflatten(-1, (self.variables, self.classes))

    def encode(self, theta):
        return {"logits": self.logits(theta, self.x_train)}

    def distribution(self, phi):
        if self.latent == "bernoulli":
            return D.Independent(D.Bernoulli(logits=phi["logits"], validate_args=False), 1, validate_args=False)
        return D.Independent(D.OneHotCategorical(logits=phi["logits"], validate_args=False), 1, validate_args=False)

    # The decoder: the cost's parameters.
    def model_parameters(self) -> dict[str, torch.Tensor]:
        return self.model

    def set_model_parameters(self, params: dict[str, torch.Tensor]) -> None:
        self.model = params

    def _decoder(self, like: torch.Tensor, detach: bool) -> dict[str, torch.Tensor]:
        return {k: (v.detach() if detach else v).to(like.device, like.dtype) for k, v in self.model.items()}

    def _nll(self, z: torch.Tensor, x: torch.Tensor, detach: bool) -> torch.Tensor:
        """``-log p(x_n | z)`` for codes ``z`` ``[..., S, N, width]`` against images ``x`` ``[N, 64]``."""
        logit = _forward(self._decoder(z, detach), z, "dec")  # [..., S, N, 64]
        return (torch.nn.functional.softplus(logit) - x.to(z.device, z.dtype) * logit).sum(-1)

    def cost(self, z):
        """``f_n(z) = -log p(x_n | z)``: ``[..., S, N, L(, C)] -> [..., S, N]`` (the decoder fixed)."""
        flat = z if self.latent == "bernoulli" else z.flatten(-2)
        return self._nll(flat, self.x_train, detach=True)

    # Exact, by enumeration.
    def codes(self, like: torch.Tensor) -> torch.Tensor:
        """Every code, ``[K^L, width]`` (bits, or the L one-hot blocks side by side)."""
        if self._codes is None:
            index = torch.arange(self.k**self.variables)
            digits = torch.stack([(index // self.k**j) % self.k for j in range(self.variables)], -1)  # [K^L, L]
            self._codes = (digits.double() if self.latent == "bernoulli"
                           else torch.nn.functional.one_hot(digits, self.k).double().flatten(-2))
        return self._codes.to(like.device, like.dtype)

    def _log_q(self, logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``log q(code | x_n)`` for every code: ``[..., N, K^L]``."""
        if self.latent == "bernoulli":
            return logits @ codes.T - torch.nn.functional.softplus(logits).sum(-1, keepdim=True)
        return torch.log_softmax(logits, -1).flatten(-2) @ codes.T

    def expected_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``E_q[-log p(x_n | z)]`` per image, ``[..., S, N]``, exactly (differentiable in the logits
        and in the decoder)."""
        codes = self.codes(logits)
        q = torch.exp(self._log_q(logits, codes))  # [..., S, N, K^L]
        decoded = _forward(self._decoder(logits, detach=False), codes, "dec")  # [S', K^L, 64]
        # -log p(x_n | code) laid out [S', N, K^L] as q is (x @ decoded^T, not its transpose), so that
        # the last product and sum run along contiguous rows
        nll = torch.nn.functional.softplus(decoded).sum(-1).unsqueeze(-2) - x.to(logits) @ decoded.transpose(-1, -2)
        return (q * nll).sum(-1)

    def expected_cost(self, dist):
        return self.expected_nll(dist.base_dist.logits, self.x_train)

    def kl_to_prior(self, logits: torch.Tensor) -> torch.Tensor:
        """``KL(q(.|x_n) || uniform) = L log K - H(q)`` per image, in closed form: ``[..., N]``."""
        if self.latent == "bernoulli":
            p = torch.sigmoid(logits)
            sp = torch.nn.functional.softplus
            entropy = (p * sp(-logits) + (1 - p) * sp(logits)).sum(-1)
        else:
            log_p = torch.log_softmax(logits, -1)
            entropy = -(log_p.exp() * log_p).sum((-1, -2))
        return self.variables * math.log(self.k) - entropy

    def analytic_cost(self, dist):
        return self.kl_to_prior(dist.base_dist.logits)

    def elbo(self, theta: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The exact ELBO per image, averaged over the images ``x``: ``[S]`` (nats)."""
        logits = self.logits(theta, x)
        return -(self.expected_nll(logits, x) + self.kl_to_prior(logits)).mean(-1)

    def curve_metrics_at(self, theta):
        return {"train_elbo": self.elbo(theta, self.x_train), "test_elbo": self.elbo(theta, self.x_test)}

    def info(self):
        return {"codes": self.k**self.variables}
