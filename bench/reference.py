"""Regenerate the committed reference reports: ``python -m bench.reference [--only NAME ...]``.

Each reference is one sweep (``bench.run`` or ``bench.train``, from a preset in
``conf/experiment/``) written to ``results/reference/NAME`` and reported there (about half an hour
on 2 cores for all of them):

* ``all``: every estimator preset on every problem preset at two sample sizes (the lists are read
  from ``conf/``, so a new yaml joins by itself);
* ``mohamed2020_square``: variance along k on the exact curves (Mohamed et al. 2020, Figure 2);
* ``group_baselines``: RLOO, GRPO and Dr. GRPO against the exact gradient on the sequence policy;
* ``relax_toy``: REINFORCE, REBAR and RELAX on the RELAX paper's toy, variance;
* ``train_policy``, ``train_quadratic``: the score function and its baselines and the pathwise
  estimator in training, on the policy network and the Gaussian quadratic;
* ``train_group_baselines``: RLOO, GRPO and Dr. GRPO training the sequence policy;
* ``train_reinmax_polynomial``: the ReinMax paper's polynomial toy with Adam at 1e-3;
* ``train_bayes_logreg``: the gradient variance along training of the Bayesian logistic regression;
* ``train_relax_toy``: the RELAX toy's learning curves.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .presets import preset_names

REFERENCE = Path("results/reference")


def runs() -> dict[str, tuple[str, list[str]]]:
    every = [f"estimator={','.join(preset_names('estimator'))}", f"problem={','.join(preset_names('problem'))}"]
    return {
        "all": ("bench.run", ["+experiment=reference", *every]),
        "mohamed2020_square": ("bench.run", ["+experiment=mohamed2020_square"]),
        "group_baselines": ("bench.run", ["+experiment=group_baselines"]),
        "relax_toy": ("bench.run", ["+experiment=relax_toy", "n_replicates=100000"]),
        "train_policy": ("bench.train", ["+experiment=train_policy"]),
        "train_quadratic": ("bench.train", ["+experiment=train_quadratic"]),
        "train_group_baselines": ("bench.train", ["+experiment=train_group_baselines"]),
        "train_reinmax_polynomial": ("bench.train", ["+experiment=reinmax_polynomial"]),
        "train_bayes_logreg": ("bench.train", ["+experiment=bayes_logreg"]),
        "train_relax_toy": ("bench.train", ["+experiment=relax_toy", "steps=2000", "log_every=20",
                                            "variance_every=250", "optimizer.lr=0.01"]),
    }


def main(argv=None) -> int:
    table = runs()
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(table), help="regenerate only these")
    args = parser.parse_args(argv)
    for name in args.only or list(table):
        module, overrides = table[name]
        folder = REFERENCE / name
        sweep = subprocess.run([sys.executable, "-m", module, "-m", *overrides, f"hydra.sweep.dir={folder}",
                                "progress=false"])
        if sweep.returncode != 0:
            print(f"the {name} sweep failed (exit {sweep.returncode})", file=sys.stderr)
            return sweep.returncode
        report = subprocess.run([sys.executable, "-m", "bench.report", str(folder)])
        if report.returncode != 0:
            return report.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
