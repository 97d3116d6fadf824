"""Which errors the command line reports in one line, and how.

Errors a user can cause and fix (a missing or malformed file, a bad value, an
optional package not installed) are one line on stderr and exit 1. Anything
else, ``TypeError``, ``KeyError``, ``RuntimeError`` included, is a bug and
keeps its traceback.
"""

from __future__ import annotations

import sys

from ..errors import MissingDependencyError

USER_ERRORS = (OSError, ValueError, MissingDependencyError)


def report(command: str, err: BaseException) -> int:
    """Prints ``eres2net <command>: error: <message>`` and returns 1."""
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"eres2net {command}: error: {message}", file=sys.stderr)
    return 1
