"""``python -m bench.perf``."""

import sys

from .cli import main

sys.exit(main())
