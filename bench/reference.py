"""Regenerate the reference reports: ``python -m bench.reference [--only NAME ...] [--update-committed]``.

Each reference is one sweep of ``bench.run`` or ``bench.train`` from a preset in
``conf/experiment/`` (the command printed beside its table reproduces it), reported in its folder:
a new ``results/runs/reference/DATE_TIME/NAME`` by default, ``results/reference/NAME`` (the
committed reports the README's tables are written from) with ``--update-committed``. About 70
minutes on 2 cores for all of them (``group_baselines`` 23, ``all`` 16):

* ``all``: every estimator preset on every problem preset at two sample sizes (the lists are read
  from the presets, so a new class or yaml joins by itself);
* ``mohamed2020_square``: variance along k on the exact curves (Mohamed et al. 2020, Figure 2);
* ``group_baselines``: every group-baseline preset (RLOO, GRPO, Dr. GRPO, DAPO, BNPO, REINFORCE++,
  OPO, ReMax, GPG, ...) against the exact gradient on the sequence policy, G = 2 to 32, two rewards;
* ``group_lengths``: the same presets on longer completions with a length-penalised reward;
* ``group_kl``: RLOO and GRPO with the KL estimators k1, k2, k3, k3_plus in the reward or the loss;
* ``group_off_policy``: RLOO's off-policy losses (PPO clip, dual clip, GSPO, CISPO) on a stale policy;
* ``relax_toy``: REINFORCE, REBAR and RELAX on the RELAX paper's toy, variance;
* ``digits_vae``: every discrete estimator's encoder gradient on the digits VAE (12 bits, exact by
  enumeration);
* ``sampling``: iid, antithetic and RQMC samples, variance against n (its slope);
* ``train_policy``, ``train_quadratic``: the score function and its baselines and the pathwise
  estimator in training, on the policy network and the Gaussian quadratic;
* ``train_group_baselines``: RLOO, GRPO and Dr. GRPO training the sequence policy;
* ``train_group_lengths``: the loss aggregations training it on longer completions: length drift;
* ``train_reinmax_polynomial``: the ReinMax paper's polynomial toy with Adam at 1e-3;
* ``train_bayes_logreg``: the gradient variance along training of the Bayesian logistic regression;
* ``train_relax_toy``: the RELAX toy's learning curves;
* ``train_digits_vae``: the digits VAE trained, exact train and test ELBO along training.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from .presets import preset_names
from .results import RESULTS_DIR, regeneration_folder

REFERENCE = RESULTS_DIR / "reference"


def runs() -> dict[str, tuple[str, list[str]]]:
    """Each reference: the command (module) and its overrides, an experiment preset's name."""
    every = [f"estimator={','.join(preset_names('estimator'))}", f"problem={','.join(preset_names('problem'))}"]
    return {
        "all": ("bench.run", ["+experiment=reference", *every]),
        "mohamed2020_square": ("bench.run", ["+experiment=mohamed2020_square"]),
        "group_baselines": ("bench.run", ["+experiment=group_baselines"]),
        "group_lengths": ("bench.run", ["+experiment=group_lengths"]),
        "group_kl": ("bench.run", ["+experiment=group_kl"]),
        "group_off_policy": ("bench.run", ["+experiment=group_off_policy"]),
        "relax_toy": ("bench.run", ["+experiment=relax_toy"]),
        "digits_vae": ("bench.run", ["+experiment=digits_vae"]),
        "sampling": ("bench.run", ["+experiment=sampling"]),
        "train_policy": ("bench.train", ["+experiment=train_policy"]),
        "train_quadratic": ("bench.train", ["+experiment=train_quadratic"]),
        "train_group_baselines": ("bench.train", ["+experiment=train_group_baselines"]),
        "train_group_lengths": ("bench.train", ["+experiment=train_group_lengths"]),
        "train_reinmax_polynomial": ("bench.train", ["+experiment=reinmax_polynomial"]),
        "train_bayes_logreg": ("bench.train", ["+experiment=bayes_logreg"]),
        "train_relax_toy": ("bench.train", ["+experiment=train_relax_toy"]),
        "train_digits_vae": ("bench.train", ["+experiment=train_digits_vae"]),
    }


def main(argv=None) -> int:
    table = runs()
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(table), help="regenerate only these")
    parser.add_argument("--update-committed", action="store_true",
                        help=f"write into {REFERENCE.relative_to(RESULTS_DIR.parent)} (the committed reports)")
    args = parser.parse_args(argv)
    root = regeneration_folder("reference", REFERENCE, args.update_committed)
    for name in args.only or list(table):
        module, overrides = table[name]
        folder = root / name
        sweep = subprocess.run([sys.executable, "-m", module, "-m", *overrides, f"hydra.sweep.dir={folder}",
                                "progress=false"])
        if sweep.returncode != 0:
            print(f"the {name} sweep failed (exit {sweep.returncode})", file=sys.stderr)
            return sweep.returncode
        report = subprocess.run([sys.executable, "-m", "bench.report", str(folder)])
        if report.returncode != 0:
            return report.returncode
    print(f"reports written under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
