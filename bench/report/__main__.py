"""``python -m bench.report``: see :mod:`bench.report.cli`."""

import sys

from .cli import main

sys.exit(main())
