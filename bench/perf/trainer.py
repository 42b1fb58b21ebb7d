"""The batched trainer against the REINFORCE question's own training loop (run-steps per second)."""

from __future__ import annotations

import pandas as pd
import torch

from estimators import make_estimator

from ..problems import make_problem
from ..problems.policy import PolicyNet
from ..training import train
from .methods import _median_seconds


def question_loop_rate(n_samples: int, steps: int, min_run_time: float = 1.0, device: str = "cpu") -> float:
    """Run-steps per second of the REINFORCE question's own training loop: one policy network, one
    ``backward()`` and one Adam step per step, an EMA baseline (one run at a time)."""
    torch.manual_seed(0)
    net = PolicyNet().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.ones(1, device=device), 3.0
    baseline = 0.0

    def loop():
        nonlocal baseline
        for _ in range(steps):
            mu, std = net(x)
            dist = torch.distributions.Normal(mu, std)
            a = dist.sample((n_samples,))
            reward = -((y - a) ** 2)
            loss = -((reward - baseline) * dist.log_prob(a)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            baseline = 0.9 * baseline + 0.1 * float(reward.mean())

    return steps / _median_seconds(loop, min_run_time, device)


def trainer_rate(n_seeds: int, n_samples: int, steps: int, device: str = "cpu") -> float:
    """Run-steps per second of :func:`bench.training.train` with ``n_seeds`` batched runs (the
    same policy network, EMA baseline and Adam; logging once at the end, not timed)."""
    problem = make_problem("policy_mlp")
    estimator = make_estimator("score_function_baseline", {"baseline": "ema", "decay": 0.9})
    train(problem, estimator, {"name": "adam", "lr": 0.01}, n_samples=n_samples, steps=5, n_seeds=n_seeds,
          log_every=5, device=device)  # warm-up
    done = train(problem, estimator, {"name": "adam", "lr": 0.01}, n_samples=n_samples, steps=steps,
                 n_seeds=n_seeds, log_every=steps, device=device)
    return steps * n_seeds / done.seconds


def trainer_table(quick: bool, rounds: int = 3, device: str = "cpu") -> pd.DataFrame:
    """The batched trainer against the question's loop (both on ``device``), in alternation;
    medians over rounds."""
    rows = []
    for n_seeds in (10, 100, 1000):
        loop, batched = [], []
        for _ in range(rounds):
            loop.append(question_loop_rate(10, 50 if quick else 200, 0.3 if quick else 1.0, device))
            batched.append(trainer_rate(n_seeds, 10, 50 if quick else 200, device))
        row = dict(device=device, n_seeds=n_seeds, question_loop_per_s=float(pd.Series(loop).median()),
                   trainer_per_s=float(pd.Series(batched).median()))
        row["trainer_vs_loop"] = row["trainer_per_s"] / row["question_loop_per_s"]
        print(f"trainer policy_mlp n_seeds={n_seeds:<5} question's loop {row['question_loop_per_s']:.4g} run-steps/s, "
              f"batched trainer {row['trainer_per_s']:.4g} run-steps/s: x{row['trainer_vs_loop']:.0f}", flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def trainer_markdown(df: pd.DataFrame) -> str:
    lines = ["| training loop (policy_mlp, EMA baseline, Adam, n_samples=10) | n_seeds | the question's loop "
             "(run-steps/s) | batched trainer (run-steps/s) | ratio |", "|---|---|---|---|---|"]
    lines += [f"| `python -m bench.train` | {r.n_seeds} | {r.question_loop_per_s:.3g} | {r.trainer_per_s:.3g} | "
              f"{r.trainer_vs_loop:,.0f}x |" for r in df.itertuples()]
    return "\n".join(lines)
