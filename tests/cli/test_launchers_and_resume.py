"""Scale-out: the same sweep gives the same results.csv under the basic, joblib and
submitit_local launchers; an interrupted sweep resumed with resume=true ends with every row once."""

import re

import pandas as pd
import pytest

from tests.helpers import run_cli

SWEEP = ["-m", "estimator=score_function,arm", "problem=bernoulli_toy,gaussian_quadratic", "n_samples=2",
         "n_replicates=3000", "timing=false"]
# Where and how fast a job ran; joblib's workers also run torch with one thread each.
VOLATILE = ["job_dir", "harness_s", "time_per_estimate_s", "time_iqr_s", "threads"]


def _table(path):
    df = pd.read_csv(path).drop(columns=VOLATILE)
    return df.sort_values(["job", "param"], na_position="first").reset_index(drop=True)


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    out = tmp_path_factory.mktemp("basic")
    r = run_cli(*SWEEP, f"hydra.sweep.dir={out}")
    assert r.returncode == 1  # arm does not apply to gaussian_quadratic: recorded, not lost
    return _table(out / "results.csv")


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launchers_give_the_same_results(basic, tmp_path, launcher):
    pytest.importorskip({"joblib": "hydra_plugins.hydra_joblib_launcher",
                         "submitit_local": "hydra_plugins.hydra_submitit_launcher"}[launcher])
    r = run_cli(*SWEEP, f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 1, r.stderr
    other = _table(tmp_path / "results.csv")
    pd.testing.assert_frame_equal(basic, other)
    assert (other["status"] == "not_applicable").sum() == 1
    jobs = other["job"].nunique()
    lines = [line for line in r.stdout.splitlines() if line.startswith("job ")]
    assert len(lines) == jobs, r.stdout  # one line per job on the console, whichever process ran it


def test_interrupted_sweep_resumes_missing_jobs_only(tmp_path):
    args = ["-m", "estimator=score_function,reparameterization", "n_samples=1,2", "n_replicates=2000", "timing=false",
            f"hydra.sweep.dir={tmp_path}"]
    assert run_cli(*args).returncode == 0
    before = pd.read_csv(tmp_path / "results.csv")
    # Simulate an interruption: job 1 never ran, job 2 was killed while writing (only a temporary file).
    (tmp_path / "1" / "result.csv").unlink()
    (tmp_path / "2" / "result.csv").rename(tmp_path / "2" / ".result.csv.999.tmp")
    r = run_cli(*args, "resume=true")
    assert r.returncode == 0, r.stderr
    resumed = [line for line in r.stdout.splitlines() if line.startswith("job ") and "resumed" in line]
    rerun = [line for line in r.stdout.splitlines() if line.startswith("job ") and "resumed" not in line]
    assert [re.match(r"job \d+", line).group() for line in resumed] == ["job 0", "job 3"]
    assert [re.match(r"job \d+", line).group() for line in rerun] == ["job 1", "job 2"]
    after = pd.read_csv(tmp_path / "results.csv")
    assert len(after) == len(before) and after.groupby(["job", "param"]).size().max() == 1
    cols = ["job", "param", "variance", "bias", "mse"]
    pd.testing.assert_frame_equal(before[cols], after[cols])  # same seeds, same numbers


def test_resume_reruns_a_job_whose_configuration_changed(tmp_path):
    args = ["n_replicates=2000", "timing=false", f"hydra.run.dir={tmp_path}"]
    assert run_cli(*args).returncode == 0
    first = pd.read_csv(tmp_path / "result.csv")
    assert run_cli(*args, "seed=5", "resume=true").returncode == 0
    second = pd.read_csv(tmp_path / "result.csv")
    assert second["seed"].iloc[0] == 5 and first["variance"].iloc[0] != second["variance"].iloc[0]
