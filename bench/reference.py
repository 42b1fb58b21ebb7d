"""Regenerate the committed reference reports: ``python -m bench.reference``.

Runs two sweeps and reports them (a few minutes on 2 cores):

* ``results/reference/all``: ``+experiment=reference``, every estimator preset on every problem
  preset (the lists are read from ``conf/``);
* ``results/reference/mohamed2020_square``: ``+experiment=mohamed2020_square``, the variance of the
  score function, its optimal baseline, the pathwise and the measure-valued estimators along k,
  on the exact curves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .presets import preset_names

REFERENCE = Path("results/reference")


def main() -> int:
    every = [f"estimator={','.join(preset_names('estimator'))}", f"problem={','.join(preset_names('problem'))}"]
    runs = [("all", ["+experiment=reference", *every]),
            ("mohamed2020_square", ["+experiment=mohamed2020_square",
                                    f"hydra.sweep.dir={REFERENCE / 'mohamed2020_square'}"])]
    for name, overrides in runs:
        sweep = subprocess.run([sys.executable, "-m", "bench.run", "-m", *overrides, "progress=false"])
        if sweep.returncode != 0:
            print(f"the {name} sweep failed (exit {sweep.returncode})", file=sys.stderr)
            return sweep.returncode
        report = subprocess.run([sys.executable, "-m", "bench.report", str(REFERENCE / name)])
        if report.returncode != 0:
            return report.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
