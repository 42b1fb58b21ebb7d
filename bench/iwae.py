r"""The IWAE bound's encoder gradient on a linear-Gaussian model, against its exact value:
``python -m bench.iwae [--quick] [--update-committed]``.

The model is the one-dimensional case of Rainforth et al. (2018, "Tighter variational bounds are not
necessarily better") and Tucker et al. (2018, "Doubly reparameterized gradient estimators for Monte
Carlo objectives"): ``z ~ N(0, 1)``, ``x | z ~ N(z, 1)``, so ``p(x) = N(x; 0, 2)`` and the posterior is
``N(x / 2, 1 / 2)``; ``N`` data points drawn once from ``p(x)`` (seed 0). The encoder
``q(z | x) = N(a x + b, exp(2 c))``, theta = ``(a, b, c)``, is exact at ``(1/2, 0, log(1/2) / 2)``.
The objective is the IWAE bound summed over the data,
``L_K = sum_n E[log (1/K) sum_k w_nk]``, ``w = p(x, z) / q(z | x)``, ``z_k`` iid from ``q``.

**Exact value and gradient.** With ``w~ = w / p(x) = p(z | x) / q(z | x)`` (mean 1 under ``q``) and
Frullani's integral ``log S = int_0^inf (e^-t - e^-tS) dt / t`` for ``S > 0``, independence of the K
samples gives ``E[log (1/K) sum_k w~_k] = int_0^inf (e^-t - phi(t)^K) dt / t`` with the
one-dimensional ``phi(t) = E_q[exp(-t w~(z) / K)]``: two nested one-dimensional quadratures (the
trapezoid rule in ``u = log t`` on ``[-40, 20]`` and in the standard normal noise on ``[-12, 12]``,
written with ``expm1``/``log1p`` so that nothing cancels near ``t = 0``), for any K; autograd through
it gives the exact gradient in theta. Checked against the closed-form ELBO at K = 1 and against
Monte Carlo at K > 1 (tests/test_iwae.py).

**Estimators** of the gradient in theta, each from the same reparameterised samples
``z = mu + s eps`` (paired):

* ``iwae`` (pathwise): the gradient of ``log (1/K) sum_k w_k`` through ``z`` and through ``log q``'s
  parameters (Burda et al. 2016, "Importance weighted autoencoders");
* ``stl`` (sticking the landing): the same with ``log q``'s parameters held fixed, the path through
  ``z`` kept (Roeder et al. 2017, "Sticking the landing"): zero variance at the exact posterior, and
  biased for K > 1 (Tucker et al. 2018, Section 3);
* ``dreg``: ``sum_k sg(w^_k^2) d log w_k / d z_k  d z_k / d theta``, ``w^`` the normalised weights
  (Tucker et al. 2018, Eq. 7): unbiased, zero variance at the exact posterior.

Per estimator and K, with R replicates (batched: replicates, data and samples are tensor dimensions):
each coordinate's mean with its standard error, the exact gradient, the bias test (Hotelling's T^2 of
the mean against the exact gradient with the replicates' covariance, chi-squared with 3 degrees of
freedom: its level is checked by simulation in the tests), the total variance and each coordinate's
signal-to-noise ratio ``|E g| / sd(g)`` (the DReG paper's Figure 1: the pathwise IWAE encoder
gradient's SNR falls as K grows, DReG's does not), their standard errors by the jackknife over 50
batches of replicates. Writes ``iwae.csv`` (one row per estimator, K and coordinate) and
``snr_vs_k.png`` into a new ``results/runs/iwae/`` folder (``--update-committed``: ``results/iwae/``).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .results import RESULTS_DIR, regeneration_folder

ESTIMATORS = ("iwae", "stl", "dreg")
PARAMS = ("a", "b", "c")
KS = (1, 2, 4, 8, 16, 32, 64)
POSTERIOR = (0.5, 0.0, 0.5 * math.log(0.5))  # the exact encoder
THETA = (0.6, 0.2, 0.5 * math.log(2.0 / 3.0))  # where the gradients are measured (q wider than the posterior)
JACKKNIFE_BATCHES = 50
LOG_2PI = math.log(2 * math.pi)


def _log_normal(z, mean, log_sd):
    return -0.5 * ((z - mean) * torch.exp(-log_sd)) ** 2 - log_sd - 0.5 * LOG_2PI


@dataclass
class LinearGaussian:
    """The model and its data: ``n_data`` points ``x ~ N(0, 2)`` (``seed``)."""

    n_data: int = 8
    seed: int = 0

    def __post_init__(self):
        g = torch.Generator().manual_seed(self.seed)
        self.x = math.sqrt(2.0) * torch.randn(self.n_data, generator=g, dtype=torch.float64)

    def encoder(self, theta: torch.Tensor):
        """``(mu [..., N], log_sd [..., 1])`` of ``q(z | x_n)`` for theta ``[..., 3]``."""
        return theta[..., :1] * self.x + theta[..., 1:2], theta[..., 2:3]

    def log_joint(self, z):
        """``log p(x_n, z)`` (z ``[..., N, K]``)."""
        x = self.x[:, None]
        # _log_normal(z, 0, 0) + _log_normal(x, z, 0), bit for bit, without its passes that
        # subtract 0 and multiply by exp(0)
        return (-0.5 * z**2 - 0.5 * LOG_2PI) + (-0.5 * (x - z) ** 2 - 0.5 * LOG_2PI)

    def log_evidence(self):
        return _log_normal(self.x, 0.0, torch.tensor(0.5 * math.log(2.0), dtype=torch.float64))

    def log_posterior(self, z):
        return _log_normal(z, self.x[:, None] / 2, torch.tensor(0.5 * math.log(0.5), dtype=torch.float64))

    # --- the exact bound ---------------------------------------------------------------------------

    def exact_bound(self, theta: torch.Tensor, K: int, n_u: int = 1201, n_eps: int = 1601) -> torch.Tensor:
        """``L_K`` summed over the data, by the nested quadrature of the module docstring
        (differentiable in ``theta`` ``[3]``)."""
        mu, log_sd = self.encoder(theta)
        eps = torch.linspace(-12.0, 12.0, n_eps, dtype=torch.float64)
        weight = torch.exp(-0.5 * eps**2)
        weight = weight / weight.sum()  # the trapezoid rule on the standard normal (ends ~ 0)
        z = mu[:, None] + torch.exp(log_sd)[:, None] * eps  # [N, E]
        log_w = self.log_posterior(z) - _log_normal(z, mu[:, None], log_sd[:, None])  # log w~ [N, E]
        u = torch.linspace(-40.0, 20.0, n_u, dtype=torch.float64)
        # log(t w~ / K) [U, N, E], capped where exp(-t w~ / K) is 0 already (its gradient there too)
        log_tau = (u[:, None, None] - math.log(K) + log_w[None]).clamp(max=50.0)
        a = -torch.exp(log_tau)
        # log phi: by log1p of phi - 1 while phi is near 1 (small t: nothing cancels), by logsumexp once
        # it is not (large t: phi underflows); each branch finite, so neither's gradient is NaN
        phi_minus_1 = (torch.expm1(a) * weight).sum(-1)  # [U, N]
        near_one = torch.log1p(phi_minus_1.clamp(min=-0.5))
        far = torch.logsumexp(a + torch.log(weight), -1)
        log_phi = torch.where(phi_minus_1 > -0.5, near_one, far)
        t = torch.exp(u)[:, None]
        integrand = torch.expm1(-t) - torch.expm1(K * log_phi)  # e^-t - phi^K
        du = u[1] - u[0]
        inner = du * (integrand.sum(0) - 0.5 * (integrand[0] + integrand[-1]))  # [N]
        return (self.log_evidence() + inner).sum()

    def exact_gradient(self, theta, K: int) -> torch.Tensor:
        leaf = torch.as_tensor(theta, dtype=torch.float64).clone().requires_grad_(True)
        return torch.autograd.grad(self.exact_bound(leaf, K), leaf)[0]

    def elbo(self, theta: torch.Tensor) -> torch.Tensor:
        """K = 1 in closed form: ``log p(x) - KL(q || p(z | x))`` summed over the data."""
        mu, log_sd = self.encoder(theta)
        m, v = self.x / 2, 0.5
        kl = 0.5 * (torch.exp(2 * log_sd) / v + (mu - m) ** 2 / v - 1 - 2 * log_sd + math.log(v))
        return (self.log_evidence() - kl).sum()

    # --- the estimators ------------------------------------------------------------------------------

    def estimates(self, estimator: str, theta, K: int, R: int, generator: torch.Generator,
                  max_elements: int = 2**20) -> torch.Tensor:
        """``R`` estimates of the gradient in theta, ``[R, 3]``, in chunks of at most
        ``max_elements`` samples (replicates x data x K; 2^20 ran 2.8x faster than 2^22 here, which
        spills the caches; the draws are the same whatever the chunk: one generator, in order)."""
        chunk = max(1, max_elements // (self.n_data * K))
        return torch.cat([self._estimates(estimator, theta, K, min(chunk, R - start), generator)
                          for start in range(0, R, chunk)])

    def _estimates(self, estimator: str, theta, K: int, R: int, generator: torch.Generator) -> torch.Tensor:
        """Each replicate has its own copy of the encoder's outputs (leaves), so one backward pass
        gives every replicate's gradient."""
        theta = torch.as_tensor(theta, dtype=torch.float64)
        mu0, log_sd0 = self.encoder(theta)
        mu = mu0.expand(R, -1).clone().requires_grad_(True)  # [R, N]
        log_sd = log_sd0.expand(R, 1).clone().requires_grad_(True)  # [R, 1]
        eps = torch.randn(R, self.n_data, K, generator=generator, dtype=torch.float64)
        z = mu[..., None] + torch.exp(log_sd)[..., None] * eps  # [R, N, K]
        fixed = estimator in ("stl", "dreg")  # log q's parameters held out of the gradient
        q_mu, q_log_sd = (mu.detach(), log_sd.detach()) if fixed else (mu, log_sd)
        log_w = self.log_joint(z) - _log_normal(z, q_mu[..., None], q_log_sd[..., None])  # [R, N, K]
        if estimator == "dreg":
            normalised = torch.softmax(log_w.detach(), -1)
            surrogate = (normalised**2 * log_w).sum()
        else:
            surrogate = (torch.logsumexp(log_w, -1) - math.log(K)).sum()
        g_mu, g_log_sd = torch.autograd.grad(surrogate, [mu, log_sd])
        return torch.stack([(g_mu * self.x).sum(-1), g_mu.sum(-1), g_log_sd[:, 0]], -1)  # chain rule to (a, b, c)


def _jackknife_se(values: np.ndarray, statistic) -> np.ndarray:
    """The jackknife standard error of ``statistic`` (of ``[R, 3]`` -> ``[...]``) over
    :data:`JACKKNIFE_BATCHES` consecutive batches of replicates."""
    batches = np.array_split(values, JACKKNIFE_BATCHES)
    leave_out = np.stack([statistic(np.concatenate(batches[:i] + batches[i + 1:])) for i in range(len(batches))])
    B = len(batches)
    return np.sqrt((B - 1) / B * ((leave_out - leave_out.mean(0)) ** 2).sum(0))


def bias_test(g: np.ndarray, exact: np.ndarray) -> float:
    """Hotelling's T^2 of the mean of ``g`` ``[R, 3]`` against ``exact``, its chi-squared(3) p-value
    (R large; NaN where the covariance is singular, as at the posterior)."""
    R = len(g)
    cov = np.cov(g, rowvar=False) / R
    diff = g.mean(0) - exact
    try:
        t2 = float(diff @ np.linalg.solve(cov, diff))
    except np.linalg.LinAlgError:
        return float("nan")
    if not np.isfinite(t2) or np.linalg.cond(cov) > 1e12:
        return float("nan")
    return float(stats.chi2.sf(t2, df=len(exact)))


def summarise(model: LinearGaussian, estimator: str, theta, K: int, R: int, seed: int,
              exact: torch.Tensor | None = None) -> list[dict]:
    """One row per coordinate (and a ``total`` row for the variance), as the module docstring says."""
    g = model.estimates(estimator, theta, K, R, torch.Generator().manual_seed(seed)).numpy()
    exact = (model.exact_gradient(theta, K) if exact is None else exact).numpy()
    mean, sd = g.mean(0), g.std(0, ddof=1)
    snr = lambda v: np.abs(v.mean(0)) / v.std(0, ddof=1)  # noqa: E731
    snr_values, snr_se = snr(g), _jackknife_se(g, snr)
    total_var = lambda v: np.atleast_1d(v.var(0, ddof=1).sum())  # noqa: E731
    p = bias_test(g, exact)
    common = dict(estimator=estimator, K=K, n_replicates=R, n_data=model.n_data, seed=seed,
                  theta=",".join(f"{t:.6g}" for t in theta), bias_p_value=p, bias_significant=bool(p < 0.001)
                  if np.isfinite(p) else None)
    rows = [dict(common, param=name, mean=mean[i], mean_se=sd[i] / math.sqrt(R), exact=exact[i],
                 variance=sd[i] ** 2, snr=snr_values[i], snr_se=snr_se[i]) for i, name in enumerate(PARAMS)]
    rows.append(dict(common, param="total", mean=float("nan"), mean_se=float("nan"),
                     exact=float(np.linalg.norm(exact)), variance=total_var(g)[0],
                     variance_se=_jackknife_se(g, total_var)[0], snr=float("nan"), snr_se=float("nan")))
    return rows


def table(R: int, Ks=KS, n_data: int = 8) -> pd.DataFrame:
    model = LinearGaussian(n_data)
    rows = []
    for K in Ks:
        exact = model.exact_gradient(THETA, K)
        for estimator in ESTIMATORS:
            rows += summarise(model, estimator, THETA, K, R, seed=K, exact=exact)
        print(f"K = {K}: exact {exact.numpy().round(6)}", flush=True)
    return pd.DataFrame(rows)


def snr_slopes(df: pd.DataFrame) -> pd.DataFrame:
    """Per estimator and coordinate, the least-squares slope of log SNR against log K (K >= 2)."""
    part = df[(df["param"] != "total") & (df["K"] >= 2)]
    rows = []
    for (estimator, param), g in part.groupby(["estimator", "param"], sort=False):
        slope = np.polyfit(np.log(g["K"]), np.log(g["snr"]), 1)[0]
        rows.append(dict(estimator=estimator, param=param, snr_slope=slope))
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    """The README's table: per estimator and K, the total variance, each coordinate's SNR and the
    bias test; then the SNR slopes."""
    rows = []
    for (estimator, K), g in df.groupby(["estimator", "K"], sort=False):
        total = g[g["param"] == "total"].iloc[0]
        coords = g[g["param"] != "total"].set_index("param")
        p = total["bias_p_value"]
        rows.append({"estimator": estimator, "K": int(K),
                     "total variance": f"{total['variance']:.3g} ± {total['variance_se']:.2g}",
                     **{f"SNR {c}": f"{coords.loc[c, 'snr']:.3g} ± {coords.loc[c, 'snr_se']:.2g}" for c in PARAMS},
                     "bias p": "" if not np.isfinite(p) else ("< 1e-12" if p < 1e-12 else f"{p:.2g}")
                     + (" *" if p < 0.001 else "")})
    slopes = snr_slopes(df).pivot(index="estimator", columns="param", values="snr_slope").reindex(list(ESTIMATORS))
    slope_rows = [{"estimator": e, **{f"slope {c}": f"{slopes.loc[e, c]:+.2f}" for c in PARAMS}} for e in slopes.index]
    R = int(df["n_replicates"].iloc[0])
    return (f"R = {R:.0e} estimates per row, theta = ({df['theta'].iloc[0]}); * flagged by the bias test (p < 0.001):\n\n"
            + pd.DataFrame(rows).to_markdown(index=False)
            + "\n\nSlope of log SNR against log K (K = 2 to 64):\n\n" + pd.DataFrame(slope_rows).to_markdown(index=False))


def figure(df: pd.DataFrame, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import seaborn as sns

    from .report.style import look
    part = df[df["param"] != "total"]
    grid = sns.relplot(data=part, x="K", y="snr", hue="estimator", style="estimator", col="param", kind="line",
                       markers={e: look(e)[1] for e in ESTIMATORS}, dashes=False,
                       palette={e: look(e)[0] for e in ESTIMATORS}, height=3.2, aspect=1.0,
                       facet_kws={"sharey": False})
    grid.set(xscale="log", yscale="log", ylabel="SNR |E g| / sd(g)")
    grid.figure.suptitle("IWAE encoder gradient: signal-to-noise ratio against K", y=1.03)
    grid.savefig(path, dpi=110, bbox_inches="tight")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.iwae", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="R = 2e4 replicates per row (default 2e5)")
    parser.add_argument("--update-committed", action="store_true", help="write results/iwae/")
    parser.add_argument("--redraw", action="store_true", help="only redraw the committed figure from its csv")
    args = parser.parse_args(argv)
    if args.redraw:
        figure(pd.read_csv(RESULTS_DIR / "iwae" / "iwae.csv"), RESULTS_DIR / "iwae" / "snr_vs_k.png")
        return 0
    df = table(20_000 if args.quick else 200_000)
    out = regeneration_folder("iwae", RESULTS_DIR / "iwae", args.update_committed)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "iwae.csv", index=False)
    figure(df, out / "snr_vs_k.png")
    print(markdown(df))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
