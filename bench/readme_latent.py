"""The generated sections of ``results/reference/README.md`` on latent-variable models and sampling:
the digits VAE (variance at theta0, training), the IWAE bound's encoder gradients, the sampling
modes' variance slopes and torch's implicit reparameterisation error. Each is a function of a page, as in :mod:`bench.readme`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .results import CURVES_FILE, RESULTS_DIR, is_true, read_table, with_se

REFERENCE = RESULTS_DIR / "reference"


def _total(name: str) -> pd.DataFrame:
    df = read_table(REFERENCE / name / "results.csv")
    return df[(df["param"] == "total") & (df["status"] == "ok")]


def digits_vae_table(page, name: str = "digits_vae", latent: str = "12 bits") -> str:
    """Per estimator and n: variance (and per evaluation of f), bias flagged, cosine and norm ratio."""
    total = _total(name).sort_values(["n_samples", "work_variance"])
    table = pd.DataFrame({
        "estimator": total["label"], "n": total["n_samples"], "evals of f": total["evals_per_estimate"],
        "variance": [with_se(v, s) for v, s in zip(total["variance"], total["variance_se"])],
        "variance x evals": total["work_variance"].map(lambda v: f"{v:.4g}"),
        "flagged": total["bias_significant"].map(lambda b: "yes" if is_true(b) else "no"),
        "cosine to exact": total["cosine_to_exact"].map(lambda v: f"{v:.4f}"),
        "norm ratio": total["norm_ratio_to_exact"].map(lambda v: f"{v:.3f}"),
    })
    R = int(total["n_replicates"].iloc[0])
    return (f"Encoder gradient at θ0, {latent}, 64 images, R = {R:.0e} estimates each (flagged: the bias test at "
            "family-wise 0.1 %), sorted by variance per evaluation of f:\n\n" + table.to_markdown(index=False))


def digits_vae_categorical_table(page) -> str:
    return digits_vae_table(page, "digits_vae_categorical", "4 categorical latents of 8 classes")


def digits_vae_training(page) -> str:
    """Final exact train and test ELBO (nats per image, mean ± 1.96 SE over the runs) per estimator,
    and the best mean test ELBO along training (the model overfits its 200 images)."""
    curves = read_table(REFERENCE / "train_digits_vae" / CURVES_FILE)
    last = curves[curves["step"] == curves["step"].max()]
    rows = []
    for label, runs in last.groupby("label", sort=False):
        row = {"estimator": label, "steps": int(runs["step"].iloc[0]), "runs": len(runs)}
        for key, name in (("metric.train_elbo", "train ELBO"), ("metric.test_elbo", "test ELBO")):
            v = runs[key].to_numpy(dtype=float)
            row[name] = f"{v.mean():.3f} ± {1.96 * v.std(ddof=1) / np.sqrt(len(v)):.3f}"
        mean_test = curves[curves["label"] == label].groupby("step")["metric.test_elbo"].mean()
        row["best test ELBO (step)"] = f"{mean_test.max():.3f} ({int(mean_test.idxmax())})"
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("train ELBO", ascending=False, key=lambda s: s.str.split().str[0].astype(float))
    return (table.to_markdown(index=False)
            + f"\n\n![exact train and test ELBO along training]({page.link('results/reference/train_digits_vae/metric_curves.png')})")


def sampling_table(page) -> str:
    """Per estimator and sampling mode: the slope of log variance in log n, the variance at the
    largest n, and at how many n the bias test fired."""
    total = _total("sampling")
    rows = []
    for (label, mode), g in total.groupby(["label", "sampling"], sort=False):
        g = g.sort_values("n_samples")
        slope = np.polyfit(np.log(g["n_samples"]), np.log(g["variance"]), 1)[0]
        top = g.iloc[-1]
        rows.append({"estimator": label, "sampling": mode, "variance slope in n": f"{slope:.2f}",
                     f"variance at n = {int(top['n_samples'])}": with_se(top["variance"], top["variance_se"]),
                     "flagged (of n values)": f"{int(g['bias_significant'].map(is_true).sum())} of {len(g)}"})
    return pd.DataFrame(rows).to_markdown(index=False)


def rsample_error_table(page) -> str:
    df = read_table(RESULTS_DIR / "rsample_error" / "rsample_error.csv")
    fmt = lambda v: "" if pd.isna(v) else f"{v:.2g}"  # noqa: E731
    table = pd.DataFrame({
        "family": df["family"], "concentration": df["concentration"],
        "median per-sample error": df["median_rel_error"].map(fmt), "99 % quantile": df["p99_rel_error"].map(fmt),
        "largest": df["max_rel_error"].map(fmt),
        "relative bias of the mean (± SE)": [f"{b:.2g} ± {s:.2g}" for b, s in zip(df["rel_bias"], df["rel_bias_se"])],
        "flagged": df["bias_significant"].map(lambda b: "yes" if is_true(b) else "no"),
    })
    return f"R = {int(df['n_replicates'].iloc[0]):.0e} pathwise estimates per row:\n\n" + table.to_markdown(index=False)


def iwae_table(page) -> str:
    from .iwae import markdown
    return (markdown(read_table(RESULTS_DIR / "iwae" / "iwae.csv"))
            + f"\n\n![SNR against K]({page.link('results/iwae/snr_vs_k.png')})")
