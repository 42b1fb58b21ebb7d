"""Problems and estimators from outside the repository (a module and a yaml in the user's folder)
through the command line, the joblib launcher, ``bench.measure`` and ``bench.report``; and, inside
a copy of the repository, a new estimator and a new problem added as one module each and nothing else."""

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
"""A new estimator, added as one module: nothing else in the repository changes."""
from .base import Estimator, base_distribution, mean_over_samples
from .registry import register


@register
class AntitheticPathwise(Estimator):
    r"""Antithetic pathwise estimator for Gaussians:

    .. math:: \\hat g = \\frac1N\\sum_i \\tfrac12\\nabla_\\phi\\big[f(\\mu + \\sigma\\epsilon_i) + f(\\mu - \\sigma\\epsilon_i)\\big]

    (Mohamed, Rosca, Figurnov & Mnih 2020, Section 7.3; Geweke 1988).
    """

    name = "antithetic_pathwise"
    summary = "`½ ∇[f(μ + σε) + f(μ - σε)]` (Geweke 1988)"
    requires = frozenset({"rsample"})
    families = frozenset({"gaussian"})
    evals_per_sample = 2

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        normal = base_distribution(dist)
        eps = sampler.normal(sampler.full_shape(dist, n_samples), normal.loc)
        pair = cost(normal.loc + normal.scale * eps) + cost(normal.loc - normal.scale * eps)
        return 0.5 * mean_over_samples(pair)
'''

NEW_PROBLEM = '''
"""A new problem, added as one module, with a closed-form exact variance registered beside it."""
from estimators.reparameterization import Reparameterization

from ..exact_variance import register_exact_variance
from .gaussian import GaussianProblem, gaussian_options
from .registry import register_problem


@register_problem
class GaussianQuartic(GaussianProblem):
    """f1(x) = (x - k)^4; E f1 = a^4 + 6 a^2 sigma^2 + 3 sigma^4 with a = mu - k."""

    name = "gaussian_quartic"
    summary = "x ~ N(mu, sigma²) in `dim` dims, f = Σ (x-k)⁴"
    options_spec = gaussian_options(1.5)

    def f1(self, x):
        return (x - self.k) ** 4

    def expected_f1(self, mu, sigma):
        a = mu - self.k
        return a**4 + 6 * a**2 * sigma**2 + 3 * sigma**4


@register_exact_variance(Reparameterization, GaussianQuartic)
def pathwise_variance(problem, estimator, n_samples, n_replicates):
    """f1' = 4 (a + s e)^3: Var = 16 (E(a+se)^6 - (E(a+se)^3)^2) for the mean, and with e for the scale."""
    a, s, d = problem.mu - problem.k, problem.sigma, problem.dim
    mu = 16 * (a**6 + 15 * a**4 * s**2 + 45 * a**2 * s**4 + 15 * s**6 - (a**3 + 3 * a * s**2) ** 2)
    sigma = 16 * (a**6 + 45 * a**4 * s**2 + 225 * a**2 * s**4 + 105 * s**6 - (3 * a**2 * s + 3 * s**3) ** 2)
    return {"mu": d * mu / n_samples, "sigma": d * sigma / n_samples, "total": d * (mu + sigma) / n_samples}
'''

INSPECT = '''
import bench
from bench import exact_variance as ev
from bench.catalog import applicability_table, estimators_table, problems_table
from bench.presets import preset_names
from bench.report.style import LOOKS, look
p, e = bench.make_problem("gaussian_quartic", k=1.5), bench.make_estimator("reparameterization")
print("registered", "antithetic_pathwise" in bench.ESTIMATORS, "gaussian_quartic" in bench.PROBLEMS)
print("presets", "antithetic_pathwise" in preset_names("estimator"), "gaussian_quartic" in preset_names("problem"))
print("tables", "`antithetic_pathwise`" in estimators_table(), "`gaussian_quartic`" in problems_table(),
      "`antithetic_pathwise`" in applicability_table() and "`gaussian_quartic`" in applicability_table())
closed, inherited = ev.exact_variance(p, e, 3, 1000), ev.reparameterization_variance(p, 3)
print("formula", ev.find_formula(e, p)[1].__name__ == "pathwise_variance",
      max(abs(closed[k] / inherited[k] - 1) for k in closed) < 1e-9)
print("score function formula", ev.exact_variance(p, bench.make_estimator("score_function"), 3, 1000) is not None)
print("colour", look("antithetic_pathwise")[0] not in {c for c, _ in LOOKS.values()})
'''


def _copy_of_the_repository(tmp_path):
    copy = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    for name in files:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    return copy


def _contents(folder):
    """Every file of the copy but run outputs (results/, the sweep) and caches."""
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
            and p.relative_to(folder).parts[0] not in ("results", "sweep")}


def test_a_new_estimator_and_a_new_problem_are_one_file_each(tmp_path):
    """One module each, no yaml, no command run, no other file touched: both are in the registries,
    the command line, the tables, the exact-variance dispatch (inherited and registered), the
    generic tests, a sweep and its report (the new estimator with a colour of its own), and the
    tests pass (the README's tables report the rows they lack)."""
    copy = _copy_of_the_repository(tmp_path)
    committed = _contents(copy)
    (copy / "estimators" / "antithetic_pathwise.py").write_text(textwrap.dedent(NEW_ESTIMATOR))
    (copy / "bench" / "problems" / "gaussian_quartic.py").write_text(textwrap.dedent(NEW_PROBLEM))
    env = {"PYTHONPATH": str(copy), "PATH": f"{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin"}

    def run(*args, timeout=600):
        return subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, env=env,
                              timeout=timeout)

    inspect = run("-c", INSPECT)
    assert inspect.returncode == 0, inspect.stderr
    assert "False" not in inspect.stdout and inspect.stdout.count("True") == 11, inspect.stdout
    sweep = run("-m", "bench.run", "-m", "estimator=antithetic_pathwise,reparameterization,score_function",
                "problem=gaussian_quartic", "n_replicates=20000", "timing=false", "hydra.sweep.dir=sweep")
    assert sweep.returncode == 0 and "3 of 3 jobs ok" in sweep.stdout, sweep.stdout + sweep.stderr
    total = pd.read_csv(copy / "sweep" / "results.csv").query("param == 'total'").set_index("estimator")
    assert total["exact_variance"].notna().tolist() == [False, True, True]  # no formula for the new estimator
    assert ((total["variance"] - total["exact_variance"]).abs() <= 4 * total["variance_se"]).iloc[1:].all()
    report = run("-m", "bench.report", "sweep")
    assert report.returncode == 0, report.stderr
    assert "antithetic_pathwise" in (copy / "sweep" / "report.md").read_text()
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/estimators/test_generic.py",
                "tests/problems", "tests/report/test_readme_tables.py",
                "-k", "antithetic or quartic or pages_agree or registered_exact")
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "lacks antithetic_pathwise" in tests.stdout and "gaussian_quartic" in tests.stdout, tests.stdout[-2000:]
    passed = int(tests.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 60, tests.stdout[-2000:]  # each on every problem / estimator: applicability, bias, seeds, loop
    after = _contents(copy)
    added = {"estimators/antithetic_pathwise.py", "bench/problems/gaussian_quartic.py"}
    assert {str(k): v for k, v in after.items() if str(k) not in added} == {str(k): v for k, v in committed.items()}, \
        "a command wrote into the repository"
