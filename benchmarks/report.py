"""``python -m benchmarks.report FILE...``: see :func:`benchmarks.driver.report`."""

import sys

from .driver import report

sys.exit(report(sys.argv[1:]))
