"""The policy network of the well-known REINFORCE question: a small MLP maps the input ``x`` to
``(mu, std)``, an action ``a ~ Normal(mu, std)`` earns the reward ``f(a) = -(y - a)^2``.
"""

from __future__ import annotations

import torch
from torch import distributions as D
from torch import nn

from estimators.options import integer, number

from .base import Problem
from .registry import register_problem


class PolicyNet(nn.Module):
    """Linear(1,20)-ReLU-Linear(20,30)-ReLU-Linear(30,2)-Softplus -> (mu, std)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(1, 20)
        self.fc2 = nn.Linear(20, 30)
        self.fc3 = nn.Linear(30, 2)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = torch.relu(self.fc2(h))
        return nn.functional.softplus(self.fc3(h))


def _linear(weight: torch.Tensor, bias: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``weight @ h + bias`` with any leading (run) dimensions on all three."""
    return (weight @ h.unsqueeze(-1)).squeeze(-1) + bias


@register_problem
class PolicyMLP(Problem):
    """theta = the network's weights (rows named by module, e.g. ``fc1.weight``); phi = (mu, std).

    The cost is the reward ``-(y - a)^2``: training maximises it (``maximize``), as the REINFORCE
    loss ``-(reward - baseline) * log_prob(a)`` does. Exact: ``E[f] = -((y - mu)^2 + std^2)``,
    differentiated through the network; its supremum is 0 (``mu = y``, ``std -> 0``).
    """

    name = "policy_mlp"
    summary = "MLP 1-20-30-2 (softplus) → (mu, std), a ~ N(mu, std), f = -(y-a)² (a reward: maximised)"
    maximize = True
    options_spec = {"x": number(1.0, doc="the network's input"), "y": number(3.0, doc="the target action"),
                    "init_seed": integer(0, minimum=0)}

    def setup(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            self.net = PolicyNet()
        self.net.requires_grad_(False)

    def init_params(self, device, dtype):
        return {k: v.detach().to(device=device, dtype=dtype).clone() for k, v in self.net.named_parameters()}

    def encode(self, theta):
        """The network's forward pass written with batched matmuls, so theta may carry leading
        run dimensions (``[S, 20, 1]`` ...) and phi gets them too."""
        w1 = theta["fc1.weight"]
        h = torch.relu(w1[..., 0] * self.x + theta["fc1.bias"])
        h = torch.relu(_linear(theta["fc2.weight"], theta["fc2.bias"], h))
        out = nn.functional.softplus(_linear(theta["fc3.weight"], theta["fc3.bias"], h))
        return {"mu": out[..., 0], "std": out[..., 1]}

    def distribution(self, phi):
        return D.Normal(phi["mu"], phi["std"], validate_args=False)

    def cost(self, a):
        return -((self.y - a) ** 2)

    def expected_cost(self, dist):
        return -((self.y - dist.loc) ** 2 + dist.scale**2)

    def optimum(self):
        return 0.0
