"""The same samples under another option of a group baseline: which loss aggregations give the same
gradient whatever the micro-batching, and what the standard deviation's conventions change:
``python -m bench.microbatching [--update-committed]``.

Trainers split a batch into micro-batches and accumulate their gradients (each micro-batch's loss
divided by their number K). Whether that changes the gradient depends on the aggregation: a mean
over each micro-batch's tokens (TRL's ``bnpo``) or a sum divided by K (``token_sum``) does; a mean
over sequences or over the global batch's tokens does not. This measures it on the same samples:
for each aggregation preset, reward and group size, ``n_replicates`` estimates (one seed, so every
K sees the same completions) with K = 1, 2, 4 micro-batches, in float64, and writes per K the
largest relative difference ``|g_K - g_1| / |g_1|`` over the estimates, the ratio of the mean
estimates' norms, and ``equal`` (every estimate within 1e-9 of K = 1's). The README's
micro-batching table is written from it (``results/reference/group_baselines/microbatching.csv``).

The same for the conventions of the standard deviation that GRPO divides by: eps 1e-4 (TRL), 1e-6
(verl), 1e-9, and the sample (ddof 1) or population (ddof 0) deviation, against eps 1e-4, ddof 1
(``std_conventions.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from estimators import build_estimator

from .api import estimates
from .presets import preset
from .results import RESULTS_DIR, regeneration_folder

PRESETS = ("grpo", "dr_grpo", "dr_grpo_max_length", "dapo", "bnpo", "grpo_token_sum")
SPLITS = (1, 2, 4)
# The standard deviation's conventions: TRL's eps 1e-4 with the sample std (ddof 1, the base), verl's
# 1e-6, 1e-9, and the population std (ddof 0).
CONVENTIONS = tuple({"eps": eps, "std_ddof": ddof} for ddof in (1, 0) for eps in (1e-4, 1e-6, 1e-9))
CONVENTION_PRESETS = ("grpo", "grpo_batch_scale")
EQUAL = 1e-9  # float64 rounding of sums in another order stays far below this
FILE = "microbatching.csv"
CONVENTIONS_FILE = "std_conventions.csv"
COMMITTED = RESULTS_DIR / "reference" / "group_baselines"


def paired_table(presets, variants, rewards=("verifier", "match"), group_sizes=(8,), n_replicates: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """One row per (preset, reward, G, variant): each variant's options (a dict changing the preset)
    on the same ``n_replicates`` estimates (one seed, so every variant sees the same completions),
    against the first variant's: the largest relative difference, the mean estimates' norm ratio,
    and ``equal``."""
    rows = []
    for reward in rewards:
        problem = {"name": "sequence_policy", "reward": reward}
        for G in group_sizes:
            for name in presets:
                options = preset("estimator", name)
                kept = [estimates(problem, build_estimator({**options, **variant}), n_samples=G,
                                  n_replicates=n_replicates, seed=seed, dtype=torch.float64).to_numpy()
                        for variant in variants]
                base = kept[0]
                norm = np.linalg.norm(base, axis=1)
                moving = norm > 0  # an estimate of zero (every group's rewards equal) has no relative change
                for variant, est in zip(variants, kept):
                    diff = np.linalg.norm(est - base, axis=1)
                    relative = float((diff[moving] / norm[moving]).max()) if moving.any() else 0.0
                    rows.append({"estimator": name, "aggregation": options["aggregation"], "reward": reward,
                                 "n_samples": G, **variant, "n_replicates": n_replicates,
                                 "max_relative_difference": relative,
                                 "mean_norm_ratio": float(np.linalg.norm(est.mean(0)) / np.linalg.norm(base.mean(0))),
                                 "equal": bool((diff <= EQUAL * np.maximum(norm, 1.0)).all())})
    return pd.DataFrame(rows)


def microbatching_table(presets=PRESETS, rewards=("verifier", "match"), group_sizes=(8,), splits=SPLITS,
                        n_replicates: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (preset, reward, G, K): the same ``n_replicates`` estimates' difference to K = 1's."""
    return paired_table(presets, [{"micro_batches": K} for K in splits], rewards, group_sizes, n_replicates, seed)


def conventions_table(presets=CONVENTION_PRESETS, rewards=("verifier", "match"), group_sizes=(4, 8),
                      n_replicates: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (preset, reward, G, eps, ddof): the same estimates' difference to eps 1e-4, ddof 1."""
    return paired_table(presets, list(CONVENTIONS), rewards, group_sizes, n_replicates, seed)


def markdown_table(df: pd.DataFrame) -> str:
    """The README's table: per preset and reward, whether K = 2 and 4 give K = 1's gradient, and by how much not."""
    rows = []
    for (name, reward), part in df.groupby(["estimator", "reward"], sort=False):
        row = {"estimator": name, "aggregation": part["aggregation"].iloc[0], "reward": reward}
        for _, r in part[part["micro_batches"] != part["micro_batches"].min()].iterrows():
            K = int(r["micro_batches"])
            row[f"K = {K}"] = ("equal" if r["equal"] else
                               f"differs: up to {r['max_relative_difference']:.3g}, mean ×{r['mean_norm_ratio']:.3f}")
        rows.append(row)
    G, R = int(df["n_samples"].iloc[0]), int(df["n_replicates"].iloc[0])
    return (f"The same {R} estimates (G = {G} per prompt, 4 prompts, float64) split into K micro-batches, against "
            "K = 1: \"equal\" is every estimate within 1e-9; otherwise the largest relative difference "
            "`|g_K - g_1| / |g_1|` and the ratio of the mean estimates' norms:\n\n"
            + pd.DataFrame(rows).to_markdown(index=False))


def conventions_markdown(df: pd.DataFrame) -> str:
    """The README's table: per preset, reward and G, each eps and ddof against eps 1e-4, ddof 1."""
    rows = []
    for (name, reward, G), part in df.groupby(["estimator", "reward", "n_samples"], sort=False):
        row = {"estimator": name, "reward": reward, "G": int(G)}
        for _, r in part.iloc[1:].iterrows():
            row[f"eps {r['eps']:.0e}, ddof {int(r['std_ddof'])}".replace("e-0", "e-")] = (
                "equal" if r["equal"] else f"{r['max_relative_difference']:.2g}, ×{r['mean_norm_ratio']:.4f}")
        rows.append(row)
    R = int(df["n_replicates"].iloc[0])
    return (f"The same {R} estimates (4 prompts, float64) with the standard deviation's other conventions, against "
            "TRL's (eps 1e-4 added to the sample standard deviation, ddof 1): the largest relative difference "
            "`|g - g_TRL| / |g_TRL|` and the ratio of the mean estimates' norms (\"equal\": within 1e-9):\n\n"
            + pd.DataFrame(rows).to_markdown(index=False))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.microbatching", description=__doc__.split("\n\n")[1])
    parser.add_argument("--replicates", type=int, default=1000, help="estimates per (preset, reward, K)")
    parser.add_argument("--update-committed", action="store_true",
                        help=f"write {COMMITTED.relative_to(RESULTS_DIR.parent) / FILE} (else a results/runs/ folder)")
    args = parser.parse_args(argv)
    if args.replicates < 2:
        print(f"--replicates={args.replicates} is not allowed: must be an integer >= 2", file=sys.stderr)
        return 2
    folder = Path(regeneration_folder("microbatching", COMMITTED, args.update_committed))
    folder.mkdir(parents=True, exist_ok=True)
    for table, markdown, file in ((microbatching_table, markdown_table, FILE),
                                  (conventions_table, conventions_markdown, CONVENTIONS_FILE)):
        df = table(n_replicates=args.replicates)
        df.to_csv(folder / file, index=False)
        print(markdown(df) + "\n")
        print(f"wrote {folder / file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
