"""Plot reports: ``python -m bench.report PATH [PATH ...] [--out DIR]``.

Reads sweep folders (their ``results.csv``) or ``results.csv`` files and writes, into the first
folder (or ``--out``), one PNG per figure, ``report.md`` and ``report.html``, then prints their
paths. One module per job: :mod:`~bench.report.loading` (reading and checking the files),
:mod:`~bench.report.figures`, :mod:`~bench.report.tables`, :mod:`~bench.report.render` (PNG,
Markdown, HTML) and :mod:`~bench.report.cli`.
"""

from .cli import main
from .loading import ReportError, load
from .render import Report, build

__all__ = ["Report", "ReportError", "build", "load", "main"]
