"""The opt-in torch.compile path: same noise, same estimates as eager; stateful estimators refused."""

import pytest
import torch

from bench.harness import Harness
from bench.problems import make_problem
from estimators import ConfigError, make_estimator


@pytest.mark.parametrize("ename,pname", [("score_function", "gaussian_quadratic"), ("disarm", "bernoulli_toy")])
def test_compiled_harness_matches_eager(ename, pname):
    p, e = make_problem(pname), make_estimator(ename)
    eager = Harness(p, e, n_samples=3).run(5000, seed=2)
    compiled = Harness(p, e, n_samples=3, compile=True).run(5000, seed=2)
    for a, b in zip(eager.rows, compiled.rows):
        assert b["variance"] == pytest.approx(a["variance"], rel=1e-5)
        assert b["bias"] == pytest.approx(a["bias"], rel=1e-3, abs=1e-6)


def test_compile_refuses_stateful_estimators():
    with pytest.raises(ConfigError, match="compile=True is not allowed: .*keeps state"):
        Harness(make_problem("gaussian_quadratic"), make_estimator("score_function_baseline"), n_samples=2,
                compile=True)
