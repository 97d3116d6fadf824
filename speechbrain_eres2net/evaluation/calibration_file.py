"""The calibration file: a JSON object, its format name and version, checked.

:meth:`~.calibration_map.Calibration.save` writes it and
:meth:`~.calibration_map.Calibration.load` reads it; this module knows the
layout and refuses, with a one-line ``ValueError``, any file that does not
follow it.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..dataio.files import atomic_open
from ..paths import PathLike

FILE_FORMAT = "speechbrain-eres2net-calibration"
FILE_VERSION = 1


def calibration_fields(data: Any) -> dict[str, Any]:
    """The checked fields of a calibration file's object, as the
    :class:`~.calibration_map.Calibration` constructor takes them.

    Raises ``ValueError`` for anything but a calibration object of
    :data:`FILE_VERSION`.

    Example
    -------
    >>> fields = calibration_fields(
    ...     {"format": FILE_FORMAT, "version": 1, "score_weight": 2, "bias": -1}
    ... )
    >>> fields["score_weight"], fields["quality_names"]
    (2, ())
    >>> calibration_fields({"format": "other"})
    Traceback (most recent call last):
    ...
    ValueError: not a speechbrain-eres2net-calibration file
    """
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise ValueError(f"not a {FILE_FORMAT} file")
    version = data.get("version")
    if version != FILE_VERSION:
        raise ValueError(
            f"unsupported {FILE_FORMAT} version {version!r} "
            f"(this package reads version {FILE_VERSION})"
        )
    malformed = f"malformed {FILE_FORMAT} file"
    missing = [k for k in ("score_weight", "bias") if k not in data]
    if missing:
        raise ValueError(f"{malformed}: missing key(s) {missing}")
    names = data.get("quality_names", [])
    weights = data.get("quality_weights", [])
    fitted_on = data.get("fitted_on", {})
    if not isinstance(names, list) or not isinstance(weights, list):
        raise ValueError(f"{malformed}: quality_names/quality_weights must be lists")
    if not isinstance(fitted_on, dict):
        raise ValueError(f"{malformed}: fitted_on must be an object")
    ranges = data.get("quality_ranges", {})
    if not isinstance(ranges, dict) or not all(
        isinstance(b, list) and len(b) == 2 for b in ranges.values()
    ):
        raise ValueError(f"{malformed}: quality_ranges must map names to [low, high]")
    if ranges and set(ranges) != set(names):
        raise ValueError(f"{malformed}: quality_ranges must name every quality measure")
    bounds = [ranges[n] for n in names] if ranges else []
    values = [data["score_weight"], data["bias"], *weights, *sum(bounds, [])]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{malformed}: weights must be numbers")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{malformed}: weights must be finite")
    # The dataclass checks the names against the weights (ValueError).
    return dict(
        score_weight=data["score_weight"],
        bias=data["bias"],
        quality_weights=tuple(weights),
        quality_names=tuple(names),
        fitted_on=fitted_on,
        quality_ranges=tuple(tuple(b) for b in bounds),
    )


def write_calibration_file(data: dict[str, Any], path: PathLike) -> None:
    """Writes a calibration object as JSON, atomically.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "calibration.json"
    >>> write_calibration_file({"format": FILE_FORMAT}, path)
    >>> read_calibration_file(path)
    {'format': 'speechbrain-eres2net-calibration'}
    """
    text = json.dumps(data, indent=2, sort_keys=True)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def read_calibration_file(path: PathLike) -> Any:
    """The JSON value of a calibration file; ``ValueError`` naming the file
    when it is not JSON (``OSError`` if it cannot be read)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: not a {FILE_FORMAT} file (invalid JSON: {err})"
        ) from None
