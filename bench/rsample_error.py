r"""torch's implicit reparameterisation error, measured: ``python -m bench.rsample_error [--quick]``.

torch's ``Gamma``, ``Beta`` and ``Dirichlet`` ``rsample`` differentiate a sample ``x`` with respect
to its concentration by an approximation of the implicit-function theorem's
``dx/dalpha = -(dF/dalpha)(x) / p(x)`` (Figurnov et al. 2018; Jankowiak & Obermeyer 2018, who
bound it at about 5e-4 relative for Gamma and 1e-3 for Beta). Two measurements per family and
concentration:

* **per sample**: torch's ``dx/dalpha`` on 20,000 samples against the theorem with ``F`` scipy's
  regularised incomplete gamma / beta function, ``dF/dalpha`` by central differences (step
  ``1e-6 alpha``, float64: error about 1e-9 relative): the median and maximum relative error;
* **in expectation**: the pathwise estimator of the ``gamma_power`` / ``beta_power`` /
  ``dirichlet_power`` problem (``f = x^2``) against the exact gradient, ``R`` replicates in float64:
  the relative bias of the mean along the concentration with its standard error (the error of torch's
  ``dx/dalpha`` averaged over the law of ``x``; below its standard error it is not measured).

Writes ``rsample_error.csv`` into a new ``results/runs/rsample_error/`` folder (``--update-committed``:
``results/rsample_error/``) and prints the table.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import torch
from scipy import special, stats

from .api import measure
from .results import RESULTS_DIR, regeneration_folder

CONCENTRATIONS = (0.05, 0.2, 0.5, 1.0, 3.0, 10.0, 50.0)
OTHER = 2.0  # Beta's second concentration


def implicit_dx_dalpha(family: str, x: np.ndarray, alpha: float) -> np.ndarray:
    """``-(dF/dalpha)(x) / p(x)`` by central differences of scipy's CDF (Gamma rate 1; Beta's b = OTHER)."""
    h = 1e-6 * alpha
    if family == "gamma":
        dF = (special.gammainc(alpha + h, x) - special.gammainc(alpha - h, x)) / (2 * h)
        return -dF / stats.gamma.pdf(x, alpha)
    dF = (special.betainc(alpha + h, OTHER, x) - special.betainc(alpha - h, OTHER, x)) / (2 * h)
    return -dF / stats.beta.pdf(x, alpha, OTHER)


def torch_dx_dalpha(family: str, alpha: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples and torch's per-sample ``dx/dalpha`` (float64)."""
    torch.manual_seed(seed)
    a = torch.full((n,), alpha, dtype=torch.float64, requires_grad=True)
    dist = (torch.distributions.Gamma(a, torch.ones_like(a)) if family == "gamma"
            else torch.distributions.Beta(a, torch.full_like(a, OTHER)))
    x = dist.rsample()
    (grad,) = torch.autograd.grad(x.sum(), a)
    return x.detach().numpy(), grad.numpy()


def per_sample(family: str, alpha: float, n: int = 20_000, seed: int = 0) -> dict:
    x, g = torch_dx_dalpha(family, alpha, n, seed)
    # Samples where the CDF is flat to double precision (x at the edge of the support) carry no
    # finite-difference signal: they are left out and counted.
    ok = (x > 1e-250) & (x < 1 - 1e-12 if family == "beta" else np.isfinite(x))
    exact = implicit_dx_dalpha(family, x[ok], alpha)
    good = np.isfinite(exact) & (np.abs(exact) > 1e-300)
    rel = np.abs(g[ok][good] - exact[good]) / np.abs(exact[good])
    return dict(median_rel_error=float(np.median(rel)), max_rel_error=float(rel.max()),
                p99_rel_error=float(np.quantile(rel, 0.99)), samples=int(good.sum()), left_out=int(n - good.sum()))


def in_expectation(problem: str, options: dict, R: int, seed: int = 0) -> dict:
    df = measure(dict(name=problem, **options), "reparameterization", n_samples=1, n_replicates=R, seed=seed,
                 dtype="float64", timing=False)
    total = df[df.param == "total"].iloc[0]
    norm = float(total.true_grad_norm)
    return dict(rel_bias=float(total.bias) / norm, rel_bias_se=float(total.bias_se) / norm,
                bias_significant=bool(total.bias_significant) if total.bias_significant is not None else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rsample_error", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e5 replicates for the expectation (default 1e7)")
    parser.add_argument("--update-committed", action="store_true", help="write results/rsample_error/")
    args = parser.parse_args(argv)
    R = 100_000 if args.quick else 10_000_000
    rows = []
    for family, problem in (("gamma", "gamma_power"), ("beta", "beta_power"), ("dirichlet", "dirichlet_power")):
        for alpha in CONCENTRATIONS:
            row = dict(family=family, concentration=alpha)
            if family != "dirichlet":
                row.update(per_sample(family, alpha))
            options = ({"alpha": alpha} if family == "gamma" else {"a": alpha, "b": OTHER} if family == "beta"
                       else {"alpha": [alpha, 1.0, 2.0]})
            row.update(in_expectation(problem, options, R), n_replicates=R)
            rows.append(row)
            print(row, flush=True)
    df = pd.DataFrame(rows)
    out = regeneration_folder("rsample_error", RESULTS_DIR / "rsample_error", args.update_committed) / "rsample_error.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(df.to_markdown(index=False, floatfmt=".3g"))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
