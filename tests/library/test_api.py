"""The public API: ``bench.measure`` and ``bench.compare`` give the table a sweep writes, from
names, config groups or instances; wrong arguments get a clear TypeError or ValueError."""

import pandas as pd
import pytest
import torch

import bench
from tests.helpers import run_cli

FAST = dict(n_replicates=20_000, timing=False)
VOLATILE = ["harness_s", "job_dir", "time_per_estimate_s", "time_iqr_s"]


def test_measure_has_the_columns_and_numbers_of_a_command_line_run(tmp_path):
    r = run_cli("estimator=score_function_baseline", "problem=policy_mlp", "n_replicates=20000", "timing=false",
                f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    cli = pd.read_csv(tmp_path / "results.csv")
    lib = bench.measure("policy_mlp", "score_function_baseline", n_samples=10, **FAST)
    assert list(lib.columns) == list(cli.columns)
    numbers = ["variance", "variance_se", "bias", "bias_se", "mse", "bias_p_value"]
    pd.testing.assert_frame_equal(lib[["param", *numbers]], cli[["param", *numbers]], check_dtype=False)


def test_names_groups_and_instances_agree():
    by_name = bench.measure({"name": "gaussian_quadratic", "k": 2.0}, "score_function_baseline", n_samples=4, **FAST)
    by_instance = bench.measure(bench.make_problem("gaussian_quadratic", k=2.0),
                                bench.make_estimator("score_function_baseline", baseline="ema"), n_samples=4, **FAST)
    cols = ["problem", "problem.k", "estimator", "estimator.baseline", "estimator.decay", "variance", "bias"]
    pd.testing.assert_frame_equal(by_name[cols], by_instance[cols])
    assert by_name["problem.k"].iloc[0] == 2.0


def test_compare_is_the_cross_product_with_inapplicable_pairs_as_rows():
    df = bench.compare(["gaussian_quadratic", "bernoulli_toy"], ["score_function", "reparameterization"],
                       n_samples=[1, 4], **FAST)
    jobs = df.drop_duplicates("job")
    assert len(jobs) == 8
    bad = jobs[jobs["status"] == "not_applicable"]
    assert set(zip(bad["estimator"], bad["problem"])) == {("reparameterization", "bernoulli_toy")}
    assert len(bad) == 2 and "needs rsample" in bad["message"].iloc[0]
    assert set(jobs[jobs["status"] != "not_applicable"]["status"]) == {"ok"}


@pytest.mark.parametrize("call,error,match", [
    (lambda: bench.measure(3, "score_function", n_samples=1, n_replicates=100), TypeError, "problem must be"),
    (lambda: bench.measure("gaussian_quadratic", "score_function", n_samples=0, n_replicates=100), ValueError,
     "n_samples=0"),
    (lambda: bench.measure("nope", "score_function", n_samples=1, n_replicates=100), ValueError,
     "problem='nope' is not allowed: choose one of"),
    (lambda: bench.measure("gaussian_quadratic", "score_function", n_samples=1, n_replicates=100, n_sample=3),
     TypeError, "unexpected keyword"),
    (lambda: bench.measure("bernoulli_toy", "reparameterization", n_samples=1, n_replicates=100), bench.NotApplicable,
     "reparameterization needs rsample"),
    (lambda: bench.make_problem("gaussian_quadratic", sigma=-1), ValueError, "problem.sigma=-1"),
    (lambda: bench.make_estimator("rebar", tau=1), ValueError, "estimator.tau=1 is not allowed: rebar takes temperature, eta"),
])
def test_wrong_arguments_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_float64_and_the_dtype_column():
    df = bench.measure("gaussian_quadratic", "reparameterization", n_samples=1, dtype=torch.float64, **FAST)
    assert set(df["dtype"]) == {"float64"}
