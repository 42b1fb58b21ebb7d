r"""The quadrature oracle of :mod:`bench.exact_variance` against closed forms derived by hand.

Quadratic cost, one dimension: :math:`f = (x-k)^2`, :math:`x = \mu + \sigma\epsilon`,
:math:`a = \mu - k`, so :math:`f = a^2 + 2a\sigma\epsilon + \sigma^2\epsilon^2` and, with
:math:`E\epsilon^{2m} = (2m-1)!!`:

* exact gradient: :math:`\partial_\mu = 2a`, :math:`\partial_\sigma = 2\sigma`;
* reparameterization: :math:`\mathrm{Var}[2a + 2\sigma\epsilon] = 4\sigma^2` (mean) and
  :math:`\mathrm{Var}[(2a+2\sigma\epsilon)\epsilon] = 4a^2 + 12\sigma^2 - 4\sigma^2 = 4a^2 + 8\sigma^2`;
* score function, mean: :math:`E[f^2\epsilon^2]/\sigma^2 - 4a^2` with
  :math:`E[f^2\epsilon^2] = a^4 + 18a^2\sigma^2 + 15\sigma^4`;
* score function, scale: :math:`E[f^2(\epsilon^2-1)^2]/\sigma^2 - 4\sigma^2` with
  :math:`E[f^2(\epsilon^2-1)^2] = 2a^4 + 60a^2\sigma^2 + 78\sigma^4`.

Leave-one-out (derived in the module docstring) is checked against brute-force enumeration of
a Gauss-Hermite product rule for N = 2 and 3 samples (formula and enumeration use the same
discrete measure, so they agree to round-off whatever the rule's accuracy).
"""

import itertools

import pytest
import torch

from bench.exact_variance import gauss_hermite, reparameterization_variance, score_function_variance
from bench.problems import make_problem


@pytest.mark.parametrize("mu,sigma,k", [(1.0, 1.0, 3.0), (0.5, 2.0, -1.0), (-2.0, 0.3, 0.0)])
def test_quadratic_closed_forms(mu, sigma, k):
    p = make_problem("gaussian_quadratic", {"mu": mu, "sigma": sigma, "k": k})
    a = mu - k
    sf = score_function_variance(p, 1)
    assert sf["mu"] == pytest.approx((a**4 + 18 * a**2 * sigma**2 + 15 * sigma**4) / sigma**2 - 4 * a**2, rel=1e-10)
    assert sf["sigma"] == pytest.approx((2 * a**4 + 60 * a**2 * sigma**2 + 78 * sigma**4) / sigma**2 - 4 * sigma**2, rel=1e-10)
    rp = reparameterization_variance(p, 1)
    assert rp["mu"] == pytest.approx(4 * sigma**2, rel=1e-10)
    assert rp["sigma"] == pytest.approx(4 * a**2 + 8 * sigma**2, rel=1e-10)
    # N samples divide the variance by N; dim coordinates multiply it by dim.
    p3 = make_problem("gaussian_quadratic", {"mu": mu, "sigma": sigma, "k": k, "dim": 3})
    assert reparameterization_variance(p3, 4)["total"] == pytest.approx(3 * (rp["mu"] + rp["sigma"]) / 4, rel=1e-10)


@pytest.mark.parametrize("name", ["gaussian_quadratic", "gaussian_cosine", "gaussian_exp"])
@pytest.mark.parametrize("n", [2, 3])
def test_leave_one_out_formula_by_enumeration(name, n):
    """E over the product rule of all n-tuples of nodes: exact for the LOO estimator's moments."""
    p = make_problem(name, {"mu": 0.7, "sigma": 1.3})
    eps, w = gauss_hermite(24)
    x = p.mu + p.sigma * eps
    f = p.f1(x)
    scores = {"mu": eps / p.sigma, "sigma": (eps**2 - 1) / p.sigma}
    expected = score_function_variance(p, n, "loo", rule=(eps, w))
    for param, s in scores.items():
        m1 = m2 = 0.0
        for idx in itertools.product(range(len(eps)), repeat=n):
            idx = list(idx)
            fi, si, wi = f[idx], s[idx], torch.prod(w[idx])
            b = (fi.sum() - fi) / (n - 1)
            g = ((fi - b) * si).mean()
            m1 += wi * g
            m2 += wi * g * g
        assert float(m2 - m1**2) == pytest.approx(expected[param], rel=1e-8)


def test_exact_variances_dispatch_by_class_most_specific_first(monkeypatch):
    """Like ``register_kl``: a subclass inherits its base class's formulas; a registration for the
    subclass itself wins; a pair with no registration has none."""
    from bench import exact_variance as ev
    from bench.problems.gaussian import GaussianQuadratic
    from estimators import make_estimator
    from estimators.reparameterization import Reparameterization

    class Shifted(GaussianQuadratic):
        name = "shifted_quadratic_for_a_test"

    problem, estimator = Shifted(k=2.0), make_estimator("reparameterization")
    inherited = ev.exact_variance(problem, estimator, 4, 1000)
    assert inherited == ev.reparameterization_variance(problem, 4)  # the GaussianProblem formula
    monkeypatch.setattr(ev, "_FORMULAS", dict(ev._FORMULAS))
    ev.register_exact_variance(Reparameterization, Shifted)(lambda p, e, n, r: {"mu": 1.0, "sigma": 2.0, "total": 3.0})
    assert ev.exact_variance(problem, estimator, 4, 1000)["total"] == 3.0
    assert ev.exact_variance(GaussianQuadratic(k=2.0), estimator, 4, 1000) == inherited  # the base class's is kept
    assert ev.exact_variance(problem, make_estimator("rebar"), 4, 1000) is None
    with pytest.raises(ValueError, match="registered twice"):
        ev.register_exact_variance(Reparameterization, Shifted)(lambda *a: None)
