"""The speed benchmark's pieces run and compare like with like (no timing is asserted)."""

import pandas as pd
import torch

from bench import perf
from bench.harness import measure_estimates as measure
from bench.problems import make_problem
from estimators import make_estimator


def test_perf_pieces_run_and_table_renders():
    p = make_problem("gaussian_quadratic")
    row = perf._measure_case(p, "gaussian_quadratic", {"dim": 1}, "score_function", 1, 2000, 20, quick=True, rounds=2)
    for key in ("naive_per_s", "harness_per_s", "closed_form_per_s"):
        assert row[key] > 0
    table = perf.markdown_table(pd.DataFrame([row]))
    assert table.count("\n") == 2 and "gaussian_quadratic (dim 1)" in table


def test_closed_form_reference_is_the_same_estimator():
    """The closed-form score function computes the harness's estimates: same variance within SE."""
    p = make_problem("gaussian_quadratic", {"dim": 2})
    R = 50_000
    gen = torch.Generator().manual_seed(0)
    eps = torch.randn((3, R, 2), generator=gen, dtype=torch.float64)
    x = p.mu + p.sigma * eps
    f = ((x - p.k) ** 2).sum(-1, keepdim=True)
    g = torch.cat([(f * eps).mean(0) / p.sigma, (f * (eps * eps - 1)).mean(0) / p.sigma], 1)
    closed_var = float(g.var(0).sum())
    row = measure(p, make_estimator("score_function"), n_samples=3, n_replicates=R, seed=1, dtype=torch.float64).rows[-1]
    assert abs(row["variance"] - closed_var) < 4 * 2**0.5 * row["variance_se"]
