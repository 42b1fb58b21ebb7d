"""Generic tests, table-driven over the presets (as numpyro's distribution tests are over their
table): every estimator preset on every problem preset (``bench.presets``: each registered class
at its defaults, and the yamls that name other settings). A new estimator or problem is covered by
adding its module;
there is no per-estimator list here.

* applicability: an inapplicable pair is refused with a reason naming the estimator; an
  applicable one gives finite estimates;
* the bias test: unbiased estimators are not flagged (20,000 replicates, float64); declared-biased
  ones get their bias measured, and each is flagged on at least one problem (else why declare it);
* the exact variance, wherever a registered formula holds (``bench.exact_variance``), within 4
  standard errors of the measured one, and every registered formula checked on some pair;
* same seed, same numbers; another seed, other numbers;
* every docstring states the formula and (but for the exact reference) its source paper;
* the batched harness equals a naive loop of one ``backward()`` per replicate on the same noise
  (state carried from step to step for stateful estimators).
"""

from __future__ import annotations

import math
import re

import pytest
import torch

import json

from bench.exact_variance import exact_variance, find_formula, registered_formulas
from bench.geometry import with_runs
from bench.harness import Harness, measure_estimates
from bench.presets import applicable_pairs, build, preset_names
from bench.regression import REFERENCE_FILE, case_id, check_against_reference, measure_case
from estimators import NotApplicable
from estimators.sampling import PredrawnSampler, RecordingSampler

PAIRS = [(e, p) for e in preset_names("estimator") for p in preset_names("problem")]
APPLICABLE = applicable_pairs()
IDS = [f"{e}-{p}" for e, p in APPLICABLE]
N_SAMPLES = 2
R_BIAS = 20_000
Z = 4.0  # standard errors: a two-sided 99.994 % interval per check, with fixed seeds
RECORDED = json.loads(REFERENCE_FILE.read_text())["cases"]


def _n_samples(estimator) -> int:
    return max(N_SAMPLES, estimator.min_samples)


@pytest.mark.parametrize("ename,pname", PAIRS, ids=[f"{e}-{p}" for e, p in PAIRS])
def test_applicability(ename, pname):
    estimator, problem = build("estimator", ename), build("problem", pname)
    if (ename, pname) not in APPLICABLE:
        with pytest.raises(NotApplicable, match=estimator.name):
            Harness(problem, estimator, n_samples=_n_samples(estimator))
        return
    m = measure_estimates(problem, estimator, n_samples=_n_samples(estimator), n_replicates=64, seed=0,
                          keep_estimates=True)
    assert torch.isfinite(m.estimates).all()
    assert m.status() == "ok"


@pytest.mark.parametrize("ename,pname", APPLICABLE, ids=IDS)
def test_bias_and_recorded_variance(ename, pname):
    """The bias test (unbiased estimators not flagged; a declared-biased one's bias measured), and
    the same measurement's variances against the recorded ones (the statistical regression, see
    tests/test_statistical_regression.py)."""
    estimator = build("estimator", ename)
    m = measure_case((ename, pname))
    total = m.rows[-1]
    assert math.isfinite(total["bias"]) and math.isfinite(total["bias_se"])
    if not estimator.biased:  # not flagged; or, where no coordinate can be tested at this R, said so
        assert total["bias_significant"] is not True, total
        if total["bias_significant"] is None:
            assert "no coordinate left to test" in "; ".join(m.messages[0]), m.messages
    exact = exact_variance(build("problem", pname), estimator, _n_samples(estimator), R_BIAS)
    if exact is not None:
        for row in m.rows:
            if row["row_kind"] != "component":
                assert abs(row["variance"] - exact[row["param"]]) <= Z * row["variance_se"], (row, exact)
    if case_id((ename, pname)) not in RECORDED:
        pytest.skip(f"variance not recorded for {case_id((ename, pname))}: python -m bench.regression --write")
    difference = check_against_reference((ename, pname), m, RECORDED)
    assert difference is None, difference


def test_every_registered_exact_variance_is_checked_on_some_preset_pair():
    checked = set()
    for ename, pname in APPLICABLE:
        estimator, problem = build("estimator", ename), build("problem", pname)
        found = find_formula(estimator, problem)
        if found is not None and found[1](problem, estimator, _n_samples(estimator), R_BIAS) is not None:
            checked.add(found[0])
    unchecked = set(registered_formulas()) - checked
    assert not unchecked, f"formulas no preset pair exercises: {[(e.__name__, p.__name__) for e, p in unchecked]}"


@pytest.mark.parametrize("ename", sorted({e for e, _ in APPLICABLE if build("estimator", e).biased}))
def test_declared_biased_estimators_are_flagged_somewhere(ename):
    flagged = []
    for e, pname in APPLICABLE:
        if e == ename:
            m = measure_estimates(build("problem", pname), build("estimator", e), n_samples=N_SAMPLES,
                                  n_replicates=R_BIAS, seed=12, dtype=torch.float64)
            flagged.append(m.rows[-1]["bias_significant"])
    assert any(flagged), f"{ename} is declared biased but no problem shows a significant bias"


@pytest.mark.parametrize("ename,pname", APPLICABLE, ids=IDS)
def test_same_seed_same_numbers(ename, pname):
    estimator, problem = build("estimator", ename), build("problem", pname)
    kw = dict(n_samples=_n_samples(estimator), n_replicates=300, keep_estimates=True)
    a = measure_estimates(problem, estimator, seed=4, **kw).estimates
    b = measure_estimates(problem, estimator, seed=4, **kw).estimates
    c = measure_estimates(problem, estimator, seed=5, **kw).estimates
    assert torch.equal(a, b)
    if bool((a.var(1) > 0).any()):  # an estimator without noise here (exact; IndeCateR on one bit) gives the same
        assert not torch.equal(a, c)


R_LOOP = 13  # a prime, so the replicate dimension is the only one of this size in every draw


@pytest.mark.parametrize("ename,pname", APPLICABLE, ids=IDS)
def test_batched_equals_naive_loop(ename, pname):
    """The harness's R batched estimates (one chunk) against R separate surrogate calls, each one
    step with one ``backward()`` through ``encode`` to theta, fed the same noise."""
    estimator, problem = build("estimator", ename), build("problem", pname)
    n = _n_samples(estimator)
    harness = Harness(problem, estimator, n_samples=n, dtype=torch.float64, chunk_elements=2**24)
    recorder = RecordingSampler(torch.Generator().manual_seed(3))
    m = harness.run(R_LOOP, sampler=recorder, keep_estimates=True)
    batched = m.estimates[0]  # [R, P_theta]

    theta0 = with_runs(None, problem, "cpu", torch.float64)
    state = m.initial_state  # after any warm-up (RELAX's psi, trained and frozen)
    cost = problem.cost_function()
    naive = []
    for r in range(R_LOOP):
        draws = []
        for draw in recorder.draws:
            dims = [i for i, size in enumerate(draw.shape) if size == R_LOOP]
            assert len(dims) == 1, draw.shape
            draws.append(draw.narrow(dims[0], r, 1))
        theta = {k: v.clone().requires_grad_(True) for k, v in theta0.items()}
        phi = {k: v.unsqueeze(0) for k, v in problem.encode(theta).items()}  # one step, one run
        loss = estimator.surrogate(problem.distribution(phi), cost, n, PredrawnSampler(draws), state, params=phi)
        grads = torch.autograd.grad(loss.sum(), list(theta.values()), allow_unused=True)
        naive.append(torch.cat([(torch.zeros_like(v) if g is None else g).reshape(-1)
                                for g, v in zip(grads, theta.values())]))
    torch.testing.assert_close(batched, torch.stack(naive), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("ename", preset_names("estimator"))
def test_docstring_states_the_formula_and_its_source(ename):
    """Every estimator's class docstring gives its formula (an ``=``) and, unless it is the exact
    reference (no Monte Carlo), the paper it comes from (a year)."""
    cls = type(build("estimator", ename))
    doc = cls.__doc__ or ""
    assert "=" in doc or "E[f]" in doc, f"{cls.__name__}: no formula in its docstring"
    if cls.name != "exact":
        assert re.search(r"\b(19|20)\d\d\b", doc), f"{cls.__name__}: no source paper (year) in its docstring"
