"""The policy network of the well-known REINFORCE question: a small MLP maps the input ``x`` to
``(mu, std)``, an action ``a ~ Normal(mu, std)`` earns ``f(a) = -(y - a)^2``.
"""

from __future__ import annotations

import torch
from torch import distributions as D
from torch import nn
from torch.func import functional_call

from .base import Problem, check_number
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


@register_problem
class PolicyMLP(Problem):
    """theta = the network's weights (rows named by module, e.g. ``fc1.weight``); phi = (mu, std).

    Exact: ``E[f] = -((y - mu)^2 + std^2)``, differentiated through the network.
    """

    name = "policy_mlp"

    def __init__(self, x: float = 1.0, y: float = 3.0, init_seed: int = 0):
        self.x = float(check_number("problem.x", x))
        self.y = float(check_number("problem.y", y))
        self.init_seed = check_number("problem.init_seed", init_seed, integer=True, minimum=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            self.net = PolicyNet()
        self.net.requires_grad_(False)

    def options(self):
        return {"x": self.x, "y": self.y, "init_seed": self.init_seed}

    def init_params(self, device, dtype):
        return {k: v.detach().to(device=device, dtype=dtype).clone() for k, v in self.net.named_parameters()}

    def encode(self, theta):
        any_param = next(iter(theta.values()))
        inp = torch.full((1,), self.x, device=any_param.device, dtype=any_param.dtype)
        out = functional_call(self.net, theta, (inp,))
        return {"mu": out[0], "std": out[1]}

    def distribution(self, phi):
        return D.Normal(phi["mu"], phi["std"], validate_args=False)

    def cost(self, a):
        return -((self.y - a) ** 2)

    def expected_cost(self, dist):
        return -((self.y - dist.loc) ** 2 + dist.scale**2)
