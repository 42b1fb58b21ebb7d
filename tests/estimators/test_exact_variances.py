"""Statistical tests: every estimator on the Gaussian problems against exact means and variances.

Fixed seeds; tolerances are ``Z`` standard errors as reported by the harness. ``Z = 4`` is a
two-sided 99.994 % interval per check (the ~100 checks here would all pass by chance with
probability ~0.6 % under a correct implementation, and the seeds are fixed, so a failure is a
change in behaviour, not noise).
"""

import pytest
import torch

from bench.exact_variance import exact_variance
from bench.harness import measure_estimates as measure
from bench.problems import make_problem
from estimators import make_estimator

Z = 4.0
R = 100_000

ESTIMATORS = [
    ("score_function", {}),
    ("score_function_baseline", {"baseline": "ema", "decay": 0.9}),
    ("score_function_baseline", {"baseline": "ema", "decay": 0.0}),
    ("score_function_baseline", {"baseline": "loo"}),
    ("reparameterization", {}),
]
PROBLEMS = [
    ("gaussian_quadratic", {}),
    ("gaussian_cosine", {}),
    ("gaussian_exp", {}),
    ("gaussian_cosine", {"mu": 0.5, "sigma": 2.0, "k": 2.0, "dim": 3}),
    ("gaussian_quadratic", {"mu": -1.0, "sigma": 0.5, "k": 1.0, "dim": 2}),
]


def _cases():
    for ename, eopts in ESTIMATORS:
        for pname, popts in PROBLEMS:
            for n in (1, 4):
                if eopts.get("baseline") == "loo" and n == 1:
                    continue
                yield pytest.param(ename, eopts, pname, popts, n,
                                   id=f"{ename}-{'-'.join(map(str, eopts.values()))}-{pname}-{popts.get('dim', 1)}d-n{n}")


@pytest.mark.parametrize("ename,eopts,pname,popts,n", list(_cases()))
def test_unbiased_with_exact_variance(ename, eopts, pname, popts, n):
    problem = make_problem(pname, popts)
    estimator = make_estimator(ename, eopts)
    m = measure(problem, estimator, n_samples=n, n_replicates=R, seed=1234, dtype=torch.float64)
    exact = exact_variance(problem, estimator, n, R)
    assert m.status() == "ok"
    for row in m.rows:
        assert row["bias_significant"] is False, row
        assert abs(row["variance"] - exact[row["param"]]) < Z * row["variance_se"], (row, exact[row["param"]])
        # The MSE of an unbiased estimator is its variance, up to the squared bias of the mean.
        assert row["mse"] == pytest.approx(row["variance"] * (R - 1) / R + row["bias"] ** 2, rel=1e-9)


def test_baseline_helps_on_quadratic():
    """The baselines lower the score function's variance on the quadratic (exact values 433 vs
    261 for EMA at n=1): a measured difference far beyond the standard errors."""
    p = make_problem("gaussian_quadratic")
    plain = measure(p, make_estimator("score_function"), n_samples=1, n_replicates=R, seed=5).rows[-1]
    ema = measure(p, make_estimator("score_function_baseline"), n_samples=1, n_replicates=R, seed=5).rows[-1]
    gap = plain["variance"] - ema["variance"]
    assert gap > Z * (plain["variance_se"] ** 2 + ema["variance_se"] ** 2) ** 0.5
