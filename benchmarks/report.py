"""Prints a saved benchmark table as Markdown: ``python -m benchmarks.report FILE``.

The README's performance table is this command's output for
``benchmarks/results.json``, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .driver import format_markdown, rows_from_json


def main(argv: list[str] | None = None) -> int:
    """Prints the machine line and the Markdown table of each JSON file."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m benchmarks.report RESULTS.json [...]", file=sys.stderr)
        return 2
    for path in paths:
        payload = json.loads(Path(path).read_text())
        machine = payload["machine"]
        print(
            f"`{payload['command']}` ({payload['started_utc']}, "
            f"{payload['seconds']:.0f} s; {machine['cpu']}, {machine['cores']} cores, "
            f"torch {machine['torch']}, load average at start "
            f"{machine['load_average_start'][0]:.2f})\n"
        )
        print(format_markdown(rows_from_json(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
