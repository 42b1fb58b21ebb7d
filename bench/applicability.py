"""The estimators x problems table (applies or not, evaluations of f per sample), generated from the
presets (one row per ``conf/estimator/*.yaml``, one column per ``conf/problem/*.yaml``):
``python -m bench.applicability`` prints the table the README shows; ``--write`` updates the README."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .presets import build, one_replicate, preset_names

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- applicability-table -->", "<!-- /applicability-table -->"


def markdown_table() -> str:
    problems = preset_names("problem")
    lines = ["| estimator | " + " | ".join(f"`{p}`" for p in problems) + " |",
             "|---|" + "---|" * len(problems)]
    for ename in preset_names("estimator"):
        est = build("estimator", ename)
        cells = []
        for pname in problems:
            dist, caps = one_replicate(pname)
            cells.append("–" if est.applies_to(caps) is not None else f"✓ {est.evals_per_estimate(1, dist)}")
        lines.append(f"| `{ename}`{' (biased)' if est.biased else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_with_table(readme: str, table: str) -> str:
    return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{table}\n{END}", readme,
                  flags=re.S)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update the table in {README}")
    args = parser.parse_args(argv)
    table = markdown_table()
    if args.write:
        README.write_text(readme_with_table(README.read_text(), table))
        print(f"written: {README}")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
