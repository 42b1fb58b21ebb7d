"""Regenerate the reference reports: ``python -m bench.reference [--only NAME ...] [--update-committed]``.

Each reference is one sweep of ``bench.run`` or ``bench.train`` from a preset in
``conf/experiment/`` (the command printed beside its table reproduces it), reported in its folder:
a new ``results/runs/reference/DATE_TIME/NAME`` by default, ``results/reference/NAME`` (the
committed reports the README's tables are written from) with ``--update-committed``. About 70
minutes on 2 cores for all of them (``group_baselines`` 23, ``all`` 16). ``--incremental`` keeps each
committed job whose configuration hash (``config_hash``: every option and root key that changes a
number) is unchanged and runs only the new or changed ones (``resume=true`` on the committed rows):
adding an estimator to a sweep runs that estimator's jobs. It trusts the code: after a change to an
estimator or the statistics, rerun that reference without it.

* ``all``: every estimator preset on every problem preset at two sample sizes (the lists are read
  from the presets, so a new class or yaml joins by itself);
* ``mohamed2020_square``: variance along k on the exact curves (Mohamed et al. 2020, Figure 2);
* ``group_baselines``: every group-baseline preset (RLOO, GRPO, Dr. GRPO, DAPO, BNPO, REINFORCE++,
  OPO, ReMax, GPG, ...) against the exact gradient on the sequence policy, G = 2 to 32, two rewards;
* ``group_lengths``: the same presets on longer completions with a length-penalised reward;
* ``group_kl``: RLOO and GRPO with the KL estimators k1, k2, k3, k3_plus in the reward or the loss;
* ``group_off_policy``: RLOO's off-policy losses (PPO clip, dual clip, GSPO, CISPO, SAPO, GMPO) on a stale policy;
* ``group_off_policy_steps``: the same with pi_old the policy k Adam steps earlier;
* ``relax_toy``: REINFORCE, REBAR and RELAX on the RELAX paper's toy, variance;
* ``digits_vae``: every discrete estimator's encoder gradient on the digits VAE (12 bits, exact by
  enumeration);
* ``digits_vae_categorical``: the same with 4 categorical latents of 8 classes;
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
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .presets import preset_names
from .results import (CURVES_FILE, JOB_FILE, JOB_IDENTITY_FILE, RESULTS_DIR, SWEEP_FILE, VARIANCE_FILE, read_table,
                      regeneration_folder, write_atomic)
from .sweeps import SUPERSEDED

SEED_PREFIX = "committed-"  # superseded/committed-HASH: a committed job's result, where resume=true finds it

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
        "group_off_policy_steps": ("bench.run", ["+experiment=group_off_policy_steps"]),
        "relax_toy": ("bench.run", ["+experiment=relax_toy"]),
        "digits_vae": ("bench.run", ["+experiment=digits_vae"]),
        "digits_vae_categorical": ("bench.run", ["+experiment=digits_vae_categorical"]),
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


def seed_from_committed(committed: Path, folder: Path) -> int:
    """Put every job of a committed reference (its ``results.csv``, and for training its curves, split
    by job) under ``folder/superseded/committed-HASH``, where ``resume=true`` finds a job of the same
    configuration hash and keeps it instead of running it; the number of jobs seeded."""
    if not (committed / SWEEP_FILE).is_file():
        return 0
    results = read_table(committed / SWEEP_FILE)
    if "config_hash" not in results:
        return 0
    per_job = {name: read_table(committed / name) for name in (CURVES_FILE, VARIANCE_FILE)
               if (committed / name).is_file() and (committed / name).stat().st_size > 0}
    seeded = 0
    for digest, rows in results[results["config_hash"].notna()].groupby("config_hash"):
        target = folder / SUPERSEDED / f"{SEED_PREFIX}{digest}"
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(rows, target / JOB_FILE)
        jobs = set(rows["job"].astype(str))
        for name, table in per_job.items():
            if "job" in table:
                write_atomic(table[table["job"].astype(str).isin(jobs)], target / name)
        (target / JOB_IDENTITY_FILE).write_text(json.dumps({"hash": digest, "config": {}}) + "\n")
        seeded += 1
    return seeded


def drop_seeds(folder: Path) -> None:
    """Remove the seeded copies (the kept jobs now sit in their own folders)."""
    for seed in (folder / SUPERSEDED).glob(f"{SEED_PREFIX}*"):
        shutil.rmtree(seed)


def main(argv=None) -> int:
    table = runs()
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(table), help="regenerate only these")
    parser.add_argument("--update-committed", action="store_true",
                        help=f"write into {REFERENCE.relative_to(RESULTS_DIR.parent)} (the committed reports)")
    parser.add_argument("--incremental", action="store_true",
                        help="keep every committed job whose configuration is unchanged (its hash) and run only the "
                             "new or changed ones; trusts the code: after a change to it, rerun without this")
    args = parser.parse_args(argv)
    root = regeneration_folder("reference", REFERENCE, args.update_committed)
    for name in args.only or list(table):
        module, overrides = table[name]
        folder = root / name
        start = time.perf_counter()
        extra = ["progress=false"]
        if args.incremental:
            n = seed_from_committed(REFERENCE / name, folder)
            extra.append("resume=true")
            print(f"{name}: {n} committed jobs offered for reuse", flush=True)
        sweep = subprocess.run([sys.executable, "-m", module, "-m", *overrides, f"hydra.sweep.dir={folder}", *extra])
        if args.incremental:
            drop_seeds(folder)
        if sweep.returncode != 0:
            print(f"the {name} sweep failed (exit {sweep.returncode})", file=sys.stderr)
            return sweep.returncode
        report = subprocess.run([sys.executable, "-m", "bench.report", str(folder)])
        if report.returncode != 0:
            return report.returncode
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"reports written under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
