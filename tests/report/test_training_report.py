"""python -m bench.report on a training sweep: learning curves against steps, evaluations and
wall-clock, the variance along training, the time-to-target table; corrupt curves refused."""

import pandas as pd
import pytest

from bench.report import ReportError, build, main
from tests.helpers import run_module


@pytest.fixture(scope="module")
def training_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    r = run_module("bench.train", "-m", "estimator=score_function,reparameterization", "problem=gaussian_quadratic",
                   "steps=40", "n_seeds=3", "log_every=5", "variance_every=20", "variance_replicates=10000",
                   "optimizer.lr=0.01", f"hydra.sweep.dir={out}")
    assert r.returncode == 0, r.stderr
    return out


def test_training_report_draws_every_figure_and_the_target_table(training_sweep, capsys):
    assert main([str(training_sweep)]) == 0
    printed = capsys.readouterr().out
    for name in ("curve_steps", "curve_evals", "curve_time", "variance_along_training"):
        assert str(training_sweep / f"{name}.png") in printed
    md = (training_sweep / "report.md").read_text()
    assert md.startswith("# Training report") and "2 jobs, 6 runs" in md
    target = md.split("## Steps, evaluations and seconds to reach a target gap")[1].split("##")[0]
    assert "reparameterization" in target and "score_function" in target and " of 3" in target
    assert "could not be drawn" not in md
    assert "needs a problem with curve_metrics" in md  # the Gaussian quadratic has none


def test_the_policy_along_training_is_drawn_for_the_sequence_policy(tmp_path, capsys):
    r = run_module("bench.train", "-m", "estimator=rloo,grpo", "problem=sequence_policy", "steps=10", "n_seeds=2",
                   "log_every=5", "n_samples=4", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert main([str(tmp_path)]) == 0
    assert str(tmp_path / "metric_curves.png") in capsys.readouterr().out
    md = (tmp_path / "report.md").read_text()
    assert "The problem's exact functionals along training" in md and "could not be drawn" not in md


def test_corrupt_curves_are_refused(training_sweep, tmp_path, capsys):
    text = (training_sweep / "curves.csv").read_text()
    bad = tmp_path / "curves.csv"
    bad.write_text(text[: len(text) - 25])
    (tmp_path / "results.csv").write_text((training_sweep / "results.csv").read_text())
    with pytest.raises(ReportError, match="curves.csv: row .* cut short"):
        build([tmp_path])
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}")


def test_the_curves_have_one_row_per_run_and_logged_step(training_sweep):
    curves = pd.read_csv(training_sweep / "curves.csv")
    assert curves.groupby(["job", "run"]).size().eq(9).all()  # steps 0, 5, ..., 40
