"""The command line: ``python -m bench.report PATH [PATH ...] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys

from .loading import ReportError
from .render import build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report",
                                     description="Figures and tables from sweep folders or results.csv files.")
    parser.add_argument("paths", nargs="+", help="sweep folders or results.csv files")
    parser.add_argument("--out", default=None, help="folder for the report (default: the first input's folder)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="draw a results file that lacks jobs of its sweep (or holds some twice), saying so")
    args = parser.parse_args(argv)
    try:
        report = build(args.paths, args.out, args.allow_partial)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an output folder that cannot be made or written
        print(f"error: {e.filename or args.out}: cannot write the report there ({e.strerror or e}); choose "
              "another --out", file=sys.stderr)
        return 2
    for f in report.figures:
        print(f.path if f.path else f"skipped {f.name}: {f.skipped}")
    print(report.out_dir / "report.md")
    print(report.out_dir / "report.html")
    return 0
