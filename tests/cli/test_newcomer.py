"""What a newcomer meets: commands that regenerate committed files write elsewhere unless told,
training sweeps over an optimizer key never pooled, help that explains, the wrong command for an
experiment named, the readable table in Python, noisy timings flagged and long ones readable."""

from pathlib import Path

import pandas as pd
import pytest

import bench
from bench import reference
from bench.results import RESULTS_DIR, regeneration_folder, summary_table, time_text
from tests.helpers import run_module


def test_regenerating_commands_write_outside_the_committed_files_unless_told(monkeypatch, tmp_path):
    committed = RESULTS_DIR / "perf"
    fresh = regeneration_folder("perf", committed, update_committed=False)
    assert fresh.parent == RESULTS_DIR / "runs" / "perf" and fresh != committed
    assert regeneration_folder("perf", committed, update_committed=True) == committed
    calls = []
    monkeypatch.setattr(reference.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        type("Done", (), {"returncode": 0})())
    assert reference.main(["--only", "relax_toy"]) == 0
    folder = Path(next(a for a in calls[0] if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])
    assert folder.parent.parent == RESULTS_DIR / "runs" / "reference" and folder.name == "relax_toy"
    calls.clear()
    assert reference.main(["--only", "relax_toy", "--update-committed"]) == 0
    assert f"hydra.sweep.dir={RESULTS_DIR / 'reference' / 'relax_toy'}" in calls[0]


def test_every_reference_is_one_experiment_preset_so_its_printed_command_reproduces_it():
    for name, (module, overrides) in reference.runs().items():
        assert [o for o in overrides if not o.startswith(("+experiment=", "estimator=", "problem="))] == [], name


def test_a_training_sweep_over_an_optimizer_key_is_never_pooled(tmp_path):
    r = run_module("bench.train", "-m", "estimator=score_function,reparameterization", "optimizer.lr=0.01,0.03",
                   "steps=20", "n_seeds=3", "log_every=5", "variance_every=0", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    console = r.stdout.split("\n\n")[-2]  # the table after the per-job lines
    header, *rows = console.splitlines()[:5]
    assert "lr" in header.split() and {row.split()[3] for row in rows} == {"0.01", "0.03"}, console
    assert r.stdout.count("job 0 (") == 1, r.stdout  # each job's line once
    report = run_module("bench.report", "sweep", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "sweep" / "report.md").read_text()
    assert "panels also split by optimizer.lr" in text
    target = [line for line in text.splitlines() if line.startswith("| policy_mlp")]
    assert len(target) == 4 and all("of 3" in line for line in target), target  # 3 runs each, not 6


def test_help_names_the_groups_and_explains_the_table():
    r = run_module("bench.run", "--help")
    assert r.returncode == 0
    assert "estimator: arm, bnpo, dapo, disarm," in r.stdout and "± is one standard error" in r.stdout and "bench.train" in r.stdout
    t = run_module("bench.train", "--help")
    assert "optimizer: adam, sgd" in t.stdout and "learning curves" in t.stdout


def test_a_training_experiment_given_to_bench_run_names_the_right_command(tmp_path):
    r = run_module("bench.run", "+experiment=train_policy", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == ("error: experiment=train_policy is a training experiment: run it with python -m "
                                "bench.train -m +experiment=train_policy")


def test_the_library_table_keeps_the_jobs_that_could_not_run_with_their_reasons():
    df = bench.compare("bernoulli_toy", ["score_function", "reparameterization"], n_samples=2, n_replicates=2000,
                       timing=False)
    text = bench.summary(df)
    assert "not_applicable" in text and "job 1: not_applicable: reparameterization needs rsample" in text
    assert "± is one standard error" in text


def test_noisy_timings_are_flagged_and_long_ones_read_in_ms_and_s():
    assert [time_text(t) for t in (2.9e-4, 0.0123, 4.2)] == ["290 us", "12.3 ms", "4.2 s"]
    row = dict(job=0, status="ok", message="", problem="p", estimator="e", label="e", n_samples=1, param="total",
               row_kind="total", variance=1.0, variance_se=0.1, bias=0.0, bias_se=0.1, bias_significant=False,
               mse=1.0, work_variance=1.0)
    quiet = summary_table(pd.DataFrame([{**row, "time_per_estimate_s": 1e-3, "time_iqr_s": 1e-4}]))
    loud = summary_table(pd.DataFrame([{**row, "time_per_estimate_s": 1e-3, "time_iqr_s": 2e-3}]))
    assert "1 ms ~" in loud and "noisy timing" in loud and "~" not in quiet.split("\n")[1]


@pytest.mark.parametrize("module", ["bench.perf", "bench.calibrate", "bench.reference"])
def test_the_regenerating_commands_say_how_to_update_the_committed_files(module):
    r = run_module(module, "--help")
    assert r.returncode == 0 and "--update-committed" in r.stdout


def test_an_incremental_reference_runs_only_the_new_jobs(tmp_path):
    """``bench.reference --incremental`` seeds a sweep folder with a committed ``results.csv`` (no job
    folders, as git keeps it): the sweep with resume=true keeps both committed jobs, byte for byte in
    their numbers, and runs only the job the preset gained; the seeds are removed afterwards."""
    from bench.results import read_table
    from tests.helpers import run_cli

    first, committed, second = tmp_path / "first", tmp_path / "committed", tmp_path / "second"
    common = ["problem=gaussian_quadratic", "n_replicates=300", "timing=false", "progress=false"]
    r = run_cli("-m", "estimator=score_function,reparameterization", *common, f"hydra.sweep.dir={first}")
    assert r.returncode == 0, r.stderr
    committed.mkdir()
    (committed / "results.csv").write_bytes((first / "results.csv").read_bytes())
    assert reference.seed_from_committed(committed, second) == 2
    r = run_cli("-m", "estimator=score_function,reparameterization,measure_valued", *common,
                f"hydra.sweep.dir={second}", "resume=true")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("resumed: result file kept") == 2, r.stdout
    reference.drop_seeds(second)
    assert not list((second / "superseded").glob("committed-*"))
    old, new = read_table(committed / "results.csv"), read_table(second / "results.csv")
    assert sorted(new["estimator"].unique()) == ["measure_valued", "reparameterization", "score_function"]
    kept = new[new["estimator"] != "measure_valued"].sort_values(["estimator", "param"])["variance"].to_numpy()
    assert (kept == old.sort_values(["estimator", "param"])["variance"].to_numpy()).all()
