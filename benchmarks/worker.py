"""``python -m benchmarks.worker``: see :func:`benchmarks.driver.worker`."""

import sys

from .measure import worker

sys.exit(worker(sys.argv[1:]))
