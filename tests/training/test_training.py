"""The training loop: exact gradient descent in closed form, batched runs equal runs made one at a
time, every unbiased estimator lowers the objective, the EMA state only uses earlier steps,
divergence is a status, and the command line."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.presets import applicable_pairs, build
from bench.problems import make_problem
from bench.training import train
from estimators import make_estimator
from estimators.sampling import PredrawnSampler, RecordingSampler
from estimators.score_function import ScoreFunctionBaseline
from tests.helpers import run_module


def test_exact_sgd_follows_gradient_descent_in_closed_form():
    """E f = (mu - 3)^2 + sigma^2 from (1, 1); SGD with lr 0.1 scales (mu - 3) and sigma by 0.8 a
    step, so the objective is 5 * 0.64^t."""
    r = train(make_problem("gaussian_quadratic"), make_estimator("exact"), {"name": "sgd", "lr": 0.1}, n_samples=1,
              steps=30, n_seeds=2, dtype=torch.float64)
    for step, rows in r.curves.groupby("step"):
        assert rows["objective"].to_numpy() == pytest.approx(5 * 0.64**step, rel=1e-12)
        if step > 0:
            assert rows["grad_cosine"].to_numpy() == pytest.approx(1.0) and (rows["grad_sq_error"] < 1e-20).all()


@pytest.mark.parametrize("pname,ename,opt", [
    ("policy_mlp", "score_function_baseline", {"name": "adam", "lr": 0.01}),
    ("gaussian_quadratic", "score_function_baseline", {"name": "sgd", "lr": 0.02, "momentum": 0.9}),
    ("bernoulli_quadratic", "disarm", {"name": "adam", "lr": 0.05}),
])
def test_batched_runs_equal_runs_made_one_at_a_time(pname, ename, opt):
    problem, estimator = make_problem(pname), make_estimator(ename)
    S, steps = 3, 25
    recorder = RecordingSampler(torch.Generator().manual_seed(0))
    batched = train(problem, estimator, opt, n_samples=4, steps=steps, n_seeds=S, dtype=torch.float64,
                    sampler=recorder)
    run_dim = [[i for i, size in enumerate(d.shape) if size == S] for d in recorder.draws]
    assert all(len(dims) == 1 for dims in run_dim)
    for run in range(S):
        draws = [d.narrow(dims[0], run, 1) for d, dims in zip(recorder.draws, run_dim)]
        alone = train(problem, estimator, opt, n_samples=4, steps=steps, n_seeds=1, dtype=torch.float64,
                      sampler=PredrawnSampler(draws))
        mine = batched.curves[batched.curves["run"] == run]
        assert alone.curves["objective"].to_numpy() == pytest.approx(mine["objective"].to_numpy(), rel=1e-10)


UNBIASED_ON_QUADRATIC = sorted({e for e, p in applicable_pairs()
                                if p == "gaussian_quadratic" and not build("estimator", e).biased})


@pytest.mark.parametrize("ename", UNBIASED_ON_QUADRATIC)
def test_every_unbiased_estimator_lowers_the_objective(ename):
    estimator = build("estimator", ename)
    r = train(make_problem("gaussian_quadratic"), estimator, {"name": "adam", "lr": 0.01},
              n_samples=max(2, estimator.min_samples), steps=60, n_seeds=8)
    assert set(r.summary["status"]) == {"ok"}
    first = r.curves[r.curves["step"] == 0]["objective"].mean()
    last = r.curves[r.curves["step"] == 60]["objective"]
    # every run ends lower, and the mean is lower by more than 4 standard errors over the runs
    assert (last < first).all() and first - last.mean() > 4 * last.std(ddof=1) / math.sqrt(len(last)), last.tolist()


class _SpyEMA(ScoreFunctionBaseline):
    """Records, at every step, the baseline it is about to use and the step's mean costs."""

    name = "spy_ema"

    def setup(self):
        super().setup()
        self.seen = []

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        before = state.baseline
        recording = RecordingSampler(sampler.generator, sampler.second)
        out = super().surrogate(dist, cost, n_samples, recording, state, params)
        (eps,) = recording.draws
        x = dist.base_dist.loc + dist.base_dist.scale * eps
        self.seen.append((torch.as_tensor(before).clone(), cost(x).mean(0).detach()))
        return out


def test_the_ema_state_carries_across_steps_and_never_includes_the_current_cost():
    spy = _SpyEMA(baseline="ema", decay=0.8)
    train(make_problem("gaussian_quadratic"), spy, {"name": "adam", "lr": 0.05}, n_samples=3, steps=12, n_seeds=4,
          dtype=torch.float64)
    num = wt = torch.zeros(1, 4, dtype=torch.float64)
    for step, (baseline, costs) in enumerate(spy.seen):
        expected = torch.where(wt > 0, num / wt.clamp_min(1e-300), torch.zeros_like(num))
        torch.testing.assert_close(torch.as_tensor(baseline, dtype=torch.float64).expand(1, 4), expected)
        num, wt = 0.8 * num + 0.2 * costs, 0.8 * wt + 0.2
    assert len(spy.seen) == 12 and not torch.allclose(spy.seen[5][0], spy.seen[6][0])


def test_divergence_is_a_status_and_the_other_runs_go_on():
    r = train(make_problem("gaussian_quadratic"), make_estimator("score_function"), {"name": "sgd", "lr": 0.02},
              n_samples=1, steps=40, n_seeds=12, dtype=torch.float64, log_every=10)
    diverged = r.summary[r.summary["status"] == "diverged"]
    assert 0 < len(diverged) < 12
    for run, step in zip(diverged["run"], diverged["diverged_step"]):
        rows = r.curves[r.curves["run"] == run]
        assert rows["step"].max() == step and rows["status"].iloc[-1] == "diverged"
        assert "diverged at step" in r.summary.loc[run, "message"]
    ok = r.summary[r.summary["status"] == "ok"]["run"]
    assert (r.curves[r.curves["run"].isin(ok)].groupby("run")["step"].max() == 40).all()


def test_variance_along_training():
    r = train(make_problem("policy_mlp"), make_estimator("score_function"), {"name": "adam", "lr": 0.01},
              n_samples=10, steps=40, n_seeds=3, variance_every=20, variance_replicates=10_000)
    totals = r.variance[r.variance["param"] == "total"]
    assert sorted(totals["step"].unique()) == [0, 20, 40] and set(totals["run"]) == {0, 1, 2}
    assert (totals["variance_se"] > 0).all() and not totals["bias_significant"].any()


FAST = ["steps=20", "n_seeds=3", "log_every=5", "variance_every=10", "variance_replicates=10000"]


def test_command_line_single_job(tmp_path):
    r = run_module("bench.train", *FAST, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "score_function on policy_mlp" in r.stdout and "objective" in r.stdout
    curves = pd.read_csv(tmp_path / "curves.csv")
    for col in ("run", "step", "objective", "gap", "grad_sq_error", "grad_cosine", "evals", "time_s", "status",
                "estimator", "problem", "optimizer", "optimizer.lr", "n_seeds"):
        assert col in curves, col
    assert len(curves) == 3 * 5
    assert set(pd.read_csv(tmp_path / "variance_curves.csv")["step"]) == {0, 10, 20}


def test_command_line_sweep_gathers_curves_and_resumes(tmp_path):
    args = ["-m", "estimator=score_function,reparameterization", "optimizer=sgd,adam", "optimizer.lr=0.01",
            *FAST, f"hydra.sweep.dir={tmp_path}"]
    r = run_module("bench.train", *args)
    assert r.returncode == 0, r.stderr
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert curves["job"].nunique() == 4 and set(curves["optimizer"]) == {"sgd", "adam"}
    assert (tmp_path / "variance_curves.csv").is_file() and (tmp_path / "results.csv").is_file()
    (tmp_path / "2" / "result.csv").unlink()
    again = run_module("bench.train", *args, "resume=true")
    assert again.returncode == 0, again.stderr
    assert sum("resumed" in line for line in again.stdout.splitlines()) == 3
    volatile = ["time_s", "job_dir", "resume"]  # where and how fast it ran, and this run's resume=true
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "curves.csv").drop(columns=volatile),
                                  curves.drop(columns=volatile))


def test_sweep_without_variance_curves_gathers_cleanly(tmp_path):
    r = run_module("bench.train", "-m", "estimator=score_function,reparameterization", "steps=5", "n_seeds=2",
                   "variance_every=0", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0 and "Error" not in r.stderr, r.stderr
    assert "2 of 2 jobs ok" in r.stdout
    assert pd.read_csv(tmp_path / "curves.csv")["job"].nunique() == 2


@pytest.mark.parametrize("args,key", [(["steps=0"], "steps=0"), (["optimizer.lr=-1"], "optimizer.lr=-1"),
                                      (["optimizer.momentum=-0.5", "optimizer=sgd"], "optimizer.momentum")])
def test_bad_keys_are_one_line(tmp_path, args, key):
    r = run_module("bench.train", *args, f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], r.stderr


def test_unknown_optimizer_lists_the_options(tmp_path):
    r = run_module("bench.train", "optimizer=rmsprop", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1 and r.stderr.strip() == (
        "error: optimizer=rmsprop is not an option of optimizer (the choices: adam, sgd)")


def test_the_problems_curve_metrics_are_logged_per_run():
    """sequence_policy's exact mean completion length and success probability are columns of the
    curves, their step-0 value the problem's own at theta0 (averaged over the prompts); a problem
    without metrics adds no column."""
    p = make_problem("sequence_policy")
    r = train(p, build("estimator", "rloo"), {"name": "adam", "lr": 0.05}, n_samples=4, steps=20, n_seeds=3,
              log_every=10, dtype=torch.float64)
    theta0 = p.init_params("cpu", torch.float64)
    exact = p.curve_metrics(p.distribution(p.encode(theta0)))
    start = r.curves[r.curves["step"] == 0]
    for name, value in exact.items():
        assert start[f"metric.{name}"].to_numpy() == pytest.approx(float(value.mean()), rel=1e-12)
    assert r.curves["metric.mean_length"].notna().all() and r.curves["step"].nunique() == 3
    plain = train(make_problem("gaussian_quadratic"), make_estimator("exact"), {"name": "sgd", "lr": 0.1},
                  n_samples=1, steps=2, n_seeds=1)
    assert not [c for c in plain.curves if c.startswith("metric.")]


def test_an_incremental_reference_keeps_training_jobs_and_renumbers_their_curves(tmp_path):
    """A committed training reference (results.csv and the gathered curves, no job folders) seeded
    into a sweep that gains an estimator in front: the two committed jobs are kept (their curves
    unchanged) under their new job numbers, in the results and in the curves alike."""
    from bench import reference

    first, committed, second = tmp_path / "first", tmp_path / "committed", tmp_path / "second"
    r = run_module("bench.train", "-m", "estimator=score_function,reparameterization", *FAST,
                   f"hydra.sweep.dir={first}")
    assert r.returncode == 0, r.stderr
    committed.mkdir()
    for name in ("results.csv", "curves.csv", "variance_curves.csv"):
        (committed / name).write_bytes((first / name).read_bytes())
    assert reference.seed_from_committed(committed, second) == 2
    r = run_module("bench.train", "-m", "estimator=measure_valued,score_function,reparameterization", *FAST,
                   f"hydra.sweep.dir={second}", "resume=true")
    assert r.returncode == 0, r.stderr
    assert sum("resumed" in line for line in r.stdout.splitlines()) == 2, r.stdout
    results, curves = pd.read_csv(second / "results.csv"), pd.read_csv(second / "curves.csv")
    jobs = results.groupby("estimator")["job"].first()
    assert jobs.to_dict() == {"measure_valued": 0, "score_function": 1, "reparameterization": 2}
    assert (curves.groupby("estimator")["job"].unique().map(list).to_dict()
            == {"measure_valued": [0], "score_function": [1], "reparameterization": [2]})
    old = pd.read_csv(first / "curves.csv")
    for estimator in ("score_function", "reparameterization"):
        np.testing.assert_array_equal(curves[curves["estimator"] == estimator]["objective"].to_numpy(),
                                      old[old["estimator"] == estimator]["objective"].to_numpy())
