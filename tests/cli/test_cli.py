"""The command line, as a user runs it: ``python -m bench.run`` in a fresh folder."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import REPO, run_cli

FAST = ["n_replicates=2000", "timing_min_run_time=0.01"]


def test_default_run_prints_a_table(tmp_path):
    r = run_cli(cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "variance" in r.stdout and "total" in r.stdout
    files = list(tmp_path.glob("results/runs/*/*/results.csv"))
    assert len(files) == 1
    df = pd.read_csv(files[0])
    assert list(df["param"]) == ["mu", "sigma", "total"] and set(df["status"]) == {"ok"}
    assert df["n_replicates"].iloc[0] == 100000


def test_sweep_writes_results_csv(tmp_path):
    r = run_cli("-m", "estimator=score_function,score_function_baseline,reparameterization",
                "problem=gaussian_quadratic,policy_mlp", "n_samples=1,3", *FAST, f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "results.csv")
    assert df["job"].nunique() == 12 and set(df["status"]) == {"ok"}
    per_job = df.groupby("job")["param"].count()
    assert set(per_job) == {3, 7}  # gaussian: mu, sigma, total; policy: 6 tensors + total
    assert len(list(tmp_path.glob("*/result.csv"))) == 12
    assert "12 of 12 jobs ok" in r.stdout
    # the jobs' configuration is in columns; the exact variance of REINFORCE on the quadratic is 87 (mu)
    sf = df[(df.estimator == "score_function") & (df.problem == "gaussian_quadratic") & (df.n_samples == 1) & (df.param == "mu")]
    assert abs(sf["variance"].iloc[0] - 87.0) < 4 * sf["variance_se"].iloc[0]


def test_failing_job_is_recorded_and_the_rest_run(tmp_path):
    r = run_cli("-m", "estimator=score_function_baseline", "estimator.baseline=loo", "n_samples=1,2",
                *FAST, f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 1
    df = pd.read_csv(tmp_path / "results.csv")
    bad = df[df["status"] != "ok"]
    assert list(bad["status"]) == ["invalid_config"] and bad["job"].iloc[0] == 0
    assert "n_samples=1 is not allowed" in bad["message"].iloc[0]
    assert set(df[df["job"] == 1]["status"]) == {"ok"}
    assert "job 0" in r.stderr and "invalid_config" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("args,key", [
    (["n_samples=0"], "n_samples=0"),
    (["problem.sigma=-1"], "problem.sigma=-1 "),
    (["dtype=half"], "dtype='half'"),
])
def test_single_run_bad_input_is_one_line(tmp_path, args, key):
    r = run_cli(*args, "timing=false", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert pd.read_csv(tmp_path / "results.csv")["status"].iloc[0] == "invalid_config"


def test_unknown_estimator_lists_the_options(tmp_path):
    r = run_cli("estimator=nope", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: estimator=nope is not an option of estimator")
    assert "score_function" in lines[0] and "Traceback" not in r.stderr


def test_two_runs_in_the_same_second_get_different_folders(tmp_path):
    env_cmd = [sys.executable, "-m", "bench.run", "n_replicates=100", "timing=false"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen(env_cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    assert len(list(tmp_path.glob("results/runs/*/*/results.csv"))) == 2


def test_every_option_is_visible_in_cfg_job():
    r = run_cli("--cfg", "job", "estimator=score_function_baseline")
    assert r.returncode == 0
    for key in ("n_samples", "n_replicates", "seed", "device", "dtype", "chunk_elements", "baseline", "decay",
                "mu", "sigma", "k", "dim"):
        assert f"{key}:" in r.stdout


def test_discrete_sweep_statuses(tmp_path):
    """The discrete issue's sweep: applicable jobs ok, inapplicable ones not_applicable, no
    unbiased estimator flagged as biased, the relaxations flagged."""
    r = run_cli("-m", "estimator=score_function,score_function_baseline,arm,disarm,rebar,gumbel_softmax,straight_through,exact",
                "problem=bernoulli_toy,bernoulli_quadratic,categorical_bandit", "n_samples=1,10", "n_replicates=20000",
                "timing=false", f"hydra.sweep.dir={tmp_path}")
    df = pd.read_csv(tmp_path / "results.csv")
    assert df["job"].nunique() == 48
    inapplicable = df[df["status"] == "not_applicable"]
    assert set(zip(inapplicable["estimator"], inapplicable["problem"])) == {
        ("arm", "categorical_bandit"), ("disarm", "categorical_bandit"), ("rebar", "categorical_bandit")}
    ok = df[df["status"] == "ok"]
    assert len(ok["job"].unique()) == 48 - 6
    unbiased = ok[~ok["estimator"].isin(["gumbel_softmax", "straight_through"])]
    assert not unbiased["bias_significant"].astype(bool).any()
    relaxed = ok[ok["estimator"].isin(["gumbel_softmax", "straight_through"]) & (ok["param"] == "total")]
    assert relaxed[relaxed["problem"] == "bernoulli_toy"]["bias_significant"].astype(bool).all()
    # not_applicable makes the exit status non-zero unless allowed
    assert r.returncode == 1
    r2 = run_cli("-m", "estimator=arm,score_function", "problem=categorical_bandit", "n_replicates=1000",
                 "timing=false", "allow_not_applicable=true", f"hydra.sweep.dir={tmp_path / 'allowed'}")
    assert r2.returncode == 0, r2.stderr
