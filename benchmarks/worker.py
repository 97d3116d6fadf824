"""Runs one benchmark function in this fresh process and prints its result.

Usage: ``python -m benchmarks.worker module:function '<json kwargs>'``. The
last stdout line is the function's dict plus ``base_rss_mb`` (peak RSS
before the call, with torch and the package imported) and ``peak_rss_mb``
(peak RSS after it). Both are the
process's ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s
``ru_maxrss`` is useless here because Linux carries the forking parent's
peak across ``execve`` into the child.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    # Elsewhere: kilobytes on Linux, bytes on macOS; may include the parent.
    scale = 1024.0 if sys.platform != "darwin" else 2.0**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def main(argv: list[str]) -> int:
    """Imports ``module:function``, calls it with the JSON kwargs, prints."""
    target, kwargs = argv[0], json.loads(argv[1])
    # Imported before the baseline so that peak - base is the work itself.
    importlib.import_module("speechbrain_eres2net")
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    base = peak_rss_mb()
    result = function(**kwargs)
    result.update(base_rss_mb=base, peak_rss_mb=peak_rss_mb())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
