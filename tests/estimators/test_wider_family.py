r"""The wider estimator family on every problem it applies to: unbiased ones against the exact
gradient (slow: with enough replicates that a 5 % bias would fail), variances against exact values where
they can be derived, relaxations' bias measured and flagged.

Measure-valued estimator on the quadratic, per coordinate, :math:`a = \mu - k`,
:math:`f(\mu + \sigma y) = a^2 + 2a\sigma y + \sigma^2 y^2`, :math:`c = 1/(\sigma\sqrt{2\pi})`,
:math:`W \sim \mathrm{Weibull}(\sqrt2, 2)` (:math:`W^2 = 2E`, :math:`E \sim \mathrm{Exp}(1)`:
:math:`EW = \sqrt{\pi/2}`, :math:`EW^2 = 2`, :math:`\mathrm{Var}W^2 = 4`), :math:`M` double-sided
Maxwell (:math:`M^2 \sim \chi^2_3`: :math:`EM^2 = 3`, :math:`EM^4 = 15`):

* mean, coupled: :math:`c(f(\mu+\sigma W) - f(\mu-\sigma W)) = 4aW/\sqrt{2\pi}`, variance
  :math:`(8a^2/\pi)(2 - \pi/2) = a^2(16/\pi - 4)`;
* mean, uncoupled: :math:`c(2a\sigma(W+W') + \sigma^2(W^2-W'^2))`, variance
  :math:`8a^2/\pi - 2a^2 + 4\sigma^2/\pi`;
* scale, uncoupled: :math:`2a(M-\epsilon) + \sigma(M^2-\epsilon^2)`, variance
  :math:`4a^2(3+1) + \sigma^2(6+2) = 16a^2 + 8\sigma^2`;
* scale, coupled (:math:`\epsilon = MU`): :math:`2aM(1-U) + \sigma M^2(1-U^2)`, variance
  :math:`4a^2 \cdot 3 \cdot \tfrac13 + \sigma^2(15 \cdot \tfrac8{15} - 2^2) = 4a^2 + 4\sigma^2`.
"""

import math

import pytest
import torch

from bench.exact_variance import (arm_variance_by_cells, measure_valued_variance_quadratic, score_function_variance,
                                  score_function_variance_gaussian_phi)
from bench.harness import measure_estimates as measure
from bench.problems import make_problem
from estimators import ESTIMATORS, NotApplicable, capabilities, make_estimator
from estimators.bernoulli import DisARM

Z = 4.0

UNBIASED = [
    ("score_function", {}),
    ("score_function_baseline", {"baseline": "ema"}),
    ("score_function_baseline", {"baseline": "loo"}),
    ("score_function_baseline", {"baseline": "optimal"}),
    ("arm", {}),
    ("disarm", {}),
    ("rebar", {}),
    ("rebar", {"temperature": 2.0, "eta": 0.3}),
    ("measure_valued", {"coupling": True}),
    ("measure_valued", {"coupling": False}),
    ("reparameterization", {}),
]
PROBLEMS = [
    ("bernoulli_toy", {}),
    ("bernoulli_toy", {"dim": 3, "p": 0.6}),
    ("bernoulli_quadratic", {}),
    ("categorical_bandit", {}),
    ("categorical_bandit", {"logits": [0.5, -1.0, 0.0, 2.0]}),
    ("gaussian_cosine", {"dim": 2}),
    ("policy_mlp", {}),
]


def _applies(ename, eopts, pname, popts):
    p = make_problem(pname, popts)
    e = make_estimator(ename, eopts)
    theta = p.init_params("cpu", torch.float64)
    dist = p.distribution({k: v.unsqueeze(0) for k, v in p.encode(theta).items()})
    return e.applies_to(capabilities(dist, p.cost_function())) is None


def _cases():
    for ename, eopts in UNBIASED:
        for pname, popts in PROBLEMS:
            if _applies(ename, eopts, pname, popts):
                yield pytest.param(ename, eopts, pname, popts, id=f"{ename}{eopts}-{pname}{popts}".replace(" ", ""))


def measure_with_power(problem, estimator, n_samples=4, seed=0):
    """Enough replicates that a bias of 5 % of the exact gradient's norm is beyond Z standard errors."""
    R = 100_000
    m = measure(problem, estimator, n_samples=n_samples, n_replicates=R, seed=seed, dtype=torch.float64)
    total = m.rows[-1]
    needed = R * (Z * total["bias_se"] / (0.05 * total["true_grad_norm"])) ** 2
    if needed > R:
        R = min(int(needed * 1.3), 3_000_000)
        m = measure(problem, estimator, n_samples=n_samples, n_replicates=R, seed=seed, dtype=torch.float64)
    return m


@pytest.mark.slow
@pytest.mark.parametrize("ename,eopts,pname,popts", list(_cases()))
def test_unbiased_estimators_pass_the_bias_test(ename, eopts, pname, popts):
    m = measure_with_power(make_problem(pname, popts), make_estimator(ename, eopts))
    total = m.rows[-1]
    assert Z * total["bias_se"] <= 0.05 * total["true_grad_norm"], "not enough replicates to see a 5 % bias"
    for row in m.rows:
        assert row["bias_significant"] is False, row


@pytest.mark.parametrize("pname,popts", [("bernoulli_toy", {}), ("bernoulli_toy", {"dim": 2, "p": 0.8, "t": 0.1}),
                                         ("categorical_bandit", {}),
                                         ("categorical_bandit", {"logits": [0.5, -1.0, 0.0, 2.0]}),
                                         ("bernoulli_quadratic", {"dim": 6})])
@pytest.mark.parametrize("n", [1, 5])
def test_score_function_variance_by_enumeration(pname, popts, n):
    p = make_problem(pname, popts)
    exact = score_function_variance(p, n)
    m = measure(p, make_estimator("score_function"), n_samples=n, n_replicates=200_000, seed=2, dtype=torch.float64)
    for row in m.rows:
        assert abs(row["variance"] - exact[row["param"]]) < Z * row["variance_se"], (row, exact)


@pytest.mark.parametrize("decay", [0.9, 0.99])
@pytest.mark.parametrize("pname,popts", [("bernoulli_toy", {}), ("categorical_bandit", {"logits": [0.5, -1.0, 0.0, 2.0]})])
def test_ema_baseline_variance_by_enumeration(pname, popts, decay):
    """The EMA baseline's variance, averaged over the replicates as consecutive steps, on discrete
    problems (the batch-means standard error is the one that holds for its dependent estimates)."""
    p = make_problem(pname, popts)
    R = 200_000
    est = make_estimator("score_function_baseline", {"baseline": "ema", "decay": decay})
    exact = score_function_variance(p, 2, "ema", decay, R)
    m = measure(p, est, n_samples=2, n_replicates=R, seed=6, dtype=torch.float64)
    for row in m.rows:
        assert abs(row["variance"] - exact[row["param"]]) < Z * row["variance_se"], (row, exact)


@pytest.mark.parametrize("popts", [{"dim": 4}, {"dim": 3, "p": 0.2, "data_seed": 2}])
def test_arm_variance_by_cell_enumeration(popts):
    p = make_problem("bernoulli_quadratic", popts)
    exact = arm_variance_by_cells(p, 3)
    m = measure(p, make_estimator("arm"), n_samples=3, n_replicates=200_000, seed=8, dtype=torch.float64)
    assert abs(m.rows[-1]["variance"] - exact["total"]) < Z * m.rows[-1]["variance_se"], (m.rows[-1], exact)


def test_policy_score_function_variance_by_gauss_hermite():
    p = make_problem("policy_mlp")
    exact = score_function_variance_gaussian_phi(p, 4)
    m = measure(p, make_estimator("score_function"), n_samples=4, n_replicates=200_000, seed=9, dtype=torch.float64)
    for row in m.rows:
        assert abs(row["variance"] - exact[row["param"]]) < Z * row["variance_se"], (row, exact)


@pytest.mark.parametrize("coupling", [True, False])
@pytest.mark.parametrize("popts", [{}, {"mu": -0.5, "sigma": 2.0, "k": 1.0, "dim": 2}])
def test_measure_valued_variance_on_quadratic(coupling, popts):
    p = make_problem("gaussian_quadratic", popts)
    exact = measure_valued_variance_quadratic(p, 3, coupling)
    m = measure(p, make_estimator("measure_valued", {"coupling": coupling}), n_samples=3, n_replicates=200_000,
                seed=4, dtype=torch.float64)
    for row in m.rows:
        assert abs(row["variance"] - exact[row["param"]]) < Z * row["variance_se"], (row, exact)
    assert m.rows[-1]["bias_significant"] is False


@pytest.mark.parametrize("pname,popts", PROBLEMS + [("gaussian_quadratic", {})])
def test_exact_estimator_has_zero_variance_and_no_bias(pname, popts):
    m = measure(make_problem(pname, popts), make_estimator("exact"), n_samples=1, n_replicates=10_000,
                dtype=torch.float64)
    for row in m.rows:
        assert row["variance"] == pytest.approx(0.0, abs=1e-20)
        assert row["bias"] < 1e-12 * max(1.0, row["true_grad_norm"])
        assert row["bias_significant"] is False


@pytest.mark.parametrize("ename", ["gumbel_softmax", "straight_through"])
def test_relaxations_are_flagged_and_their_bias_shrinks_with_temperature(ename):
    p = make_problem("bernoulli_toy")
    rows = [measure(p, make_estimator(ename, {"temperature": t}), n_samples=1, n_replicates=100_000, seed=3,
                    dtype=torch.float64).rows[-1] for t in (1.0, 0.5, 0.2, 0.1)]
    assert rows[0]["bias_significant"] is True
    for hot, cold in zip(rows, rows[1:]):
        assert hot["bias"] - cold["bias"] > Z * math.hypot(hot["bias_se"], cold["bias_se"]), (hot, cold)


class _DisARMWrongSign(DisARM):
    """DisARM with its control variate's sign flipped: the bug a bias test must catch."""

    name = "disarm_wrong_sign"

    def surrogate(self, dist, cost, n_samples, sampler, state, params=None):
        return -super().surrogate(dist, cost, n_samples, sampler, state, params)


@pytest.mark.parametrize("pname,popts", [("bernoulli_toy", {}), ("bernoulli_quadratic", {})])
def test_disarm_with_the_wrong_sign_is_flagged(pname, popts):
    p = make_problem(pname, popts)
    bad = measure(p, _DisARMWrongSign(), n_samples=2, n_replicates=50_000, seed=1).rows[-1]
    good = measure(p, DisARM(), n_samples=2, n_replicates=50_000, seed=1).rows[-1]
    assert bad["bias_significant"] is True and good["bias_significant"] is False


def test_paired_samples_across_estimators():
    """Score function, straight-through and REBAR see the same Bernoulli samples for a seed."""
    from estimators import Sampler
    from estimators.relaxed import relaxed_sample

    p = make_problem("bernoulli_toy", {"dim": 5})
    dist = p.distribution({"logits": p.init_params("cpu", torch.float32)["logits"].expand(7, 5)})
    b = Sampler.seeded(3, "cpu").sample(dist, 2)
    _, hard = relaxed_sample(dist, 2, Sampler.seeded(3, "cpu"), 1.0)
    torch.testing.assert_close(b, hard)


@pytest.mark.parametrize("ename,pname", [("reparameterization", "bernoulli_toy"), ("arm", "gaussian_quadratic"),
                                         ("measure_valued", "categorical_bandit"),
                                         ("gumbel_softmax", "policy_mlp")])
def test_inapplicable_pairs_are_refused_with_a_reason(ename, pname):
    with pytest.raises(NotApplicable, match=ename):
        measure(make_problem(pname), make_estimator(ename), n_samples=2, n_replicates=10)


def test_every_registered_estimator_documents_formula_and_source():
    for cls in ESTIMATORS.values():
        doc = cls.__doc__ or ""
        assert ".. math::" in doc or "surrogate" in doc.lower(), cls
        assert any(str(year) in doc for year in range(1985, 2027)) or cls.name == "exact", cls
