"""Shared machinery of the benchmark suite: rows, timing, isolated runs.

Every benchmark produces :class:`Row` objects (ours, reference, ratio,
target, pass/fail). Speeds are compared by interleaving our run and the
reference run inside one loop, so that load drift on a shared machine hits
both alike; the median over the timed runs is reported. Peak memory is the
``ru_maxrss`` of a fresh subprocess per measurement (Python-level tracers
do not see torch's allocations).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
REALSPK = Path(
    os.environ.get("ERES2NET_REALSPK", REPO.parent / "shared" / "data" / "realspk")
)
TIME_UNITS = {"s": 1.0, "ms": 1e3}


@dataclasses.dataclass
class Row:
    """One line of the benchmark table.

    ``ratio`` is oriented so that the target reads ``ratio >= target`` when
    ``higher_is_better`` (speed-ups: reference time / our time) and
    ``ratio <= target`` otherwise (memory: ours / reference). With
    ``absolute`` the target applies to ``ours`` itself (e.g. seconds).
    """

    section: str
    name: str
    ours: Optional[float]
    reference: Optional[float] = None
    unit: str = ""
    ratio: Optional[float] = None
    target: Optional[float] = None
    higher_is_better: bool = True
    note: str = ""
    absolute: bool = False

    @property
    def passed(self) -> Optional[bool]:
        """True/False against the target; None when there is no target."""
        value = self.ours if self.absolute else self.ratio
        if self.target is None or value is None:
            return None
        if self.higher_is_better:
            return value >= self.target
        return value <= self.target

    def as_dict(self) -> dict:
        """JSON-ready form, including ``passed``."""
        return {**dataclasses.asdict(self), "passed": self.passed}


def speed_row(
    section: str,
    name: str,
    ours_s: float,
    reference_s: Optional[float],
    target: Optional[float] = None,
    unit: str = "ms",
    note: str = "",
) -> Row:
    """A row comparing two durations (seconds in), ratio = speed-up."""
    scale = TIME_UNITS[unit]
    return Row(
        section,
        name,
        ours_s * scale,
        None if reference_s is None else reference_s * scale,
        unit,
        None if reference_s is None else reference_s / ours_s,
        target,
        True,
        note,
    )


def interleaved_times(
    functions: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    pause: float = 0.0,
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved.

    Arguments
    ---------
    functions : dict
        Name -> zero-argument callable.
    repeats : int
        Timed rounds; each round calls every function once.
    warmup : int
        Untimed rounds first (allocator, oneDNN primitive caches).
    pause : float
        Untimed seconds of sleep before each call. Thread pools spin-wait
        after a call (OpenMP's, ONNX Runtime's, OpenVINO's), so when
        functions run in different runtimes, the next call would share the
        cores with the last one's spinning workers; a user runs one engine.

    Returns
    -------
    dict
        Name -> median seconds.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(max(1, repeats)):
        for name, function in functions.items():
            if pause:
                time.sleep(pause)
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def set_threads(threads: int) -> None:
    """Sets torch's intra-op threads (the env vars are set for workers)."""
    import torch

    torch.set_num_threads(threads)


def official_eres2net(m_channels: int = 32, **kwargs: object):
    """The official 3D-Speaker ``ERes2Net`` (eval mode), from tests/oracle.py."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from oracle import official

    v1, _, _ = official()
    return v1.ERes2Net(m_channels=m_channels, **kwargs).eval()


def twin_models(m_channels: int = 32, seed: int = 0):
    """(official, ours) with identical random weights and randomised BN stats.

    BN statistics are randomised so that folding them is not a no-op.
    """
    import torch

    from speechbrain_eres2net import ERes2Net

    torch.manual_seed(seed)
    reference = official_eres2net(m_channels)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
    return reference, ERes2Net.from_3dspeaker(reference.state_dict()).eval()


def run_isolated(
    target: str,
    kwargs: dict,
    threads: int = 2,
    timeout: float = 1800.0,
    env: Optional[dict] = None,
) -> dict:
    """Runs ``module:function(**kwargs)`` in a fresh Python; adds peak RSS.

    The function must return a JSON-serialisable dict. ``peak_rss_mb`` is
    the child's ``ru_maxrss``; ``base_rss_mb`` its ``ru_maxrss`` right
    before the call (imports done), so ``peak - base`` is what the work
    added. ``env`` adds environment variables (e.g. ``ONEDNN_MAX_CPU_ISA``,
    which must be set before torch is imported).

    Raises
    ------
    RuntimeError
        If the child fails; its stderr tail is in the message.
    """
    extra = env or {}
    env = dict(os.environ)
    env.update(extra)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", target, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )
    if process.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {target} failed: {process.stderr.strip()[-2000:]}"
        )
    return json.loads(process.stdout.strip().splitlines()[-1])


def _cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """Header and one tuple of formatted cells per row."""
    header = ("section", "name", "ours", "reference", "unit", "ratio", "target", "pass")
    lines = [header]
    for row in rows:
        target = ""
        if row.target is not None:
            suffix = f" {row.unit}" if row.absolute else "x"
            target = (
                ">= " if row.higher_is_better else "<= "
            ) + f"{row.target:g}{suffix}"
        verdict = {True: "PASS", False: "FAIL", None: "-"}[row.passed]
        lines.append(
            (
                row.section,
                row.name,
                _number(row.ours),
                _number(row.reference),
                row.unit,
                "" if row.ratio is None else f"{row.ratio:.2f}x",
                target,
                verdict,
            )
        )
    return lines


def format_table(rows: Sequence[Row]) -> str:
    """The rows as one fixed-width text table."""
    lines = _cells(rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    right = {2, 3, 5}
    out = []
    for k, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (for the README)."""
    lines = _cells(rows)
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    out += [
        "| " + " | ".join(c.replace("|", "/") for c in line) + " |"
        for line in lines[1:]
    ]
    return "\n".join(out)


def rows_from_json(path: str | os.PathLike) -> list[Row]:
    """The rows of a table written by ``python -m benchmarks --json``."""
    payload = json.loads(Path(path).read_text())
    fields = {f.name for f in dataclasses.fields(Row)}
    return [Row(**{k: v for k, v in r.items() if k in fields}) for r in payload["rows"]]


def _number(value: Optional[float]) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def run_parts(
    section: str, parts: Sequence[tuple[str, Callable[[Path], list]]]
) -> list:
    """Runs a section's parts, each in its own temporary folder, timed on
    stderr; a part that raises leaves a ``section failed`` row naming the
    error and the other parts still report."""
    import tempfile

    rows: list = []
    with tempfile.TemporaryDirectory(prefix=f"eres2net-{section}-") as work:
        for part, run in parts:
            folder = Path(work) / part.replace(" ", "_")
            folder.mkdir()
            start = time.perf_counter()
            try:
                rows += run(folder)
            except Exception as error:  # the other parts still report
                note = f"{part}: {type(error).__name__}: {error}"[:300]
                rows.append(Row(section, "section failed", None, note=note))
            print(
                f"[{section}] {part}: {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return rows
