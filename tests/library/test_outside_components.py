"""Problems and estimators from outside the repository (a module and a yaml in the user's folder)
through the command line, the joblib launcher, ``bench.measure`` and ``bench.report``; and, inside
a copy of the repository, a new estimator added as one module plus one yaml and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import bench
from tests.helpers import REPO, run_cli, run_module

ESTIMATOR_MODULE = '''
"""A score function with a constant baseline b (unbiased for any b: E[grad log q] = 0)."""
import torch
import bench
from estimators.base import mean_over_samples


class ConstantBaseline(bench.Estimator):
    r"""mean_i (f(x_i) - b) grad log q(x_i) (Williams 1992)."""

    name = "constant_baseline"
    options_spec = {"b": bench.options.number(0.0)}

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        x = sampler.sample(dist, n_samples)
        with torch.no_grad():
            f = cost(x) - self.b
        return mean_over_samples(f * dist.log_prob(x))
'''


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    (tmp_path / "estimator").mkdir()
    (tmp_path / "my_estimators.py").write_text(textwrap.dedent(ESTIMATOR_MODULE))
    (tmp_path / "estimator" / "constant_baseline.yaml").write_text("_target_: my_estimators.ConstantBaseline\nb: 5.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_outside_estimator_from_the_command_line_with_joblib_and_in_a_report(user_folder):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    r = run_cli("--config-dir", ".", "-m", "estimator=constant_baseline,score_function",
                "problem=gaussian_quadratic,bernoulli_toy", "n_replicates=20000", "timing=false",
                "hydra/launcher=joblib", "hydra.sweep.dir=sweep", cwd=user_folder)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(user_folder / "sweep" / "results.csv")
    ours = df[df["estimator"] == "constant_baseline"]
    assert set(ours["status"]) == {"ok"} and set(ours["estimator.b"]) == {5.0}
    assert set(ours["estimator._target_"]) == {"my_estimators.ConstantBaseline"}
    assert not ours["bias_significant"].any()
    report = run_module("bench.report", "sweep", cwd=user_folder)
    assert report.returncode == 0, report.stderr
    assert "constant_baseline" in (user_folder / "sweep" / "report.md").read_text()


def test_outside_estimator_in_bench_measure(user_folder):
    df = bench.measure("gaussian_quadratic", {"_target_": "my_estimators.ConstantBaseline", "b": 10.0},
                       n_samples=4, n_replicates=20_000, timing=False)
    assert list(df["estimator"].unique()) == ["constant_baseline"] and df["estimator.b"].iloc[0] == 10.0
    assert df["bias_significant"].iloc[-1] == False  # noqa: E712 (a numpy bool)


@pytest.mark.parametrize("target,match", [("no_such_module.Thing", "cannot import no_such_module"),
                                          ("my_estimators.Missing", "my_estimators has no Missing"),
                                          ("torch.nn.Linear", "must name a subclass of")])
def test_a_bad_target_is_one_line(user_folder, target, match):
    (user_folder / "estimator" / "bad.yaml").write_text(f"_target_: {target}\n")
    r = run_cli("--config-dir", ".", "estimator=bad", "timing=false", "hydra.run.dir=out", cwd=user_folder)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "estimator._target_=" in lines[0] and match in lines[0], r.stderr


NEW_ESTIMATOR = '''
"""A new estimator, added as one module (and one yaml): nothing else in the repository changes."""
from .base import Estimator, base_distribution, mean_over_samples
from .registry import register


@register
class AntitheticPathwise(Estimator):
    r"""Antithetic pathwise estimator for Gaussians:

    .. math:: \\hat g = \\frac1N\\sum_i \\tfrac12\\nabla_\\phi\\big[f(\\mu + \\sigma\\epsilon_i) + f(\\mu - \\sigma\\epsilon_i)\\big]

    (Mohamed, Rosca, Figurnov & Mnih 2020, Section 7.3; Geweke 1988).
    """

    name = "antithetic_pathwise"
    requires = frozenset({"rsample"})
    families = frozenset({"gaussian"})
    evals_per_sample = 2

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        normal = base_distribution(dist)
        eps = sampler.normal(sampler.full_shape(dist, n_samples), normal.loc)
        pair = cost(normal.loc + normal.scale * eps) + cost(normal.loc - normal.scale * eps)
        return 0.5 * mean_over_samples(pair)
'''


def test_a_new_estimator_is_one_module_and_one_yaml(tmp_path):
    copy = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    for name in tracked:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    (copy / "estimators" / "antithetic_pathwise.py").write_text(textwrap.dedent(NEW_ESTIMATOR))
    (copy / "conf" / "estimator" / "antithetic_pathwise.yaml").write_text("name: antithetic_pathwise\n")
    env = {"PYTHONPATH": str(copy)}
    r = subprocess.run([sys.executable, "-m", "bench.run", "estimator=antithetic_pathwise", "n_replicates=20000",
                        "timing=false", "hydra.run.dir=out"], cwd=copy, capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "antithetic_pathwise" in r.stdout
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/estimators/test_generic.py", "tests/problems/test_configs.py", "-k", "antithetic"],
                           cwd=copy, capture_output=True, text=True, env=env, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    passed = int(tests.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 20, tests.stdout[-2000:]  # applicability on every problem, bias, seeds, naive loop
