"""The benchmark driver: ``python -m benchmarks [--only NAME,...] [options]``.

A benchmark is a function ``f(args) -> list[Row]`` registered in
:data:`BENCHMARKS`; its rows are data: a tuple of :class:`Spec` (the row's
name, which measured value is ours and which the reference, unit, target) that
:func:`render` fills from the dict of values one measurement returns. Every
table prints ours against the reference as a ratio in one run, oriented by one
rule (:meth:`Row.of`): a reference time over ours (a speed-up) for time units
where higher is better, ours over the reference otherwise. The reference is the
previous default or a peer, never the new behaviour itself. The result file
records the command that wrote it and the CPU capability the kernels ran with.
How figures are measured is :mod:`benchmarks.measure`. Example::

    python -m benchmarks --quick --only inference,evaluation --json /tmp/r.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

from .measure import cpu_capability

TIME_UNITS = ("s", "ms")
HEADER = ("section", "name", "ours", "reference", "unit", "ratio", "target", "pass")

# Name -> "module:function" (in this package) taking the parsed options. A new
# benchmark adds its line here and, if it needs any, its options to OPTIONS.
BENCHMARKS = {
    "inference": "inference:bench_latency",
    "variants": "inference:bench_variants",
    "engines": "engines:bench_engines",
    "accuracy": "engines:bench_accuracy",
    "throughput": "inference:bench_throughput",
    "long": "inference:bench_long",
    "training": "training:bench_training",
    "evaluation": "evaluation:bench_metrics",
    "dataprep": "evaluation:bench_dataprep",
    "robustness": "robustness:bench_robustness",
    "speech": "speech:bench_speech",
    "extraction": "extraction:bench_extraction",
    "identification": "identification:bench_identification",
    "sherpa": "sherpa:bench",
    "diarization": "diarization:bench_diarization",
}
SECTIONS = tuple(BENCHMARKS)

# The options of the benchmarks, one a line: flag, type, default of a full run,
# default with --quick ("-": none), help. A new benchmark adds its own here.
OPTIONS = """
--threads str 1,2 1 thread counts, e.g. 1,2
--sizes str base,large base inference: model sizes
--seconds str 3,10,30 1 inference: input durations
--large-seconds str 10 1 inference: durations of the large model
--repeats int 5 1 timed runs per point
--train-batch int 32 2 training: batch size
--train-frames int 298 100 training: frames per crop
--train-steps int 2 1 training: timed steps
--long-minutes float 10 0.1 long: recording length
--utterances int 240 6 throughput: realspk dev limit
--int8-model str - - accuracy: a model folder trained by our recipe
--isas str native,avx2 native engines: native,avx2
--calibration-utts int 50 4 engines: realspk utterances calibrating int8
--metrics-trials int 10000000 200000 evaluation: synthetic trials
--dataprep-files int 100000 1000 dataprep: generated wav files
--robustness-model str - - robustness: model folder (skipped without one)
--robustness-trials int 0 12 robustness: dev trials, half target (0: all)
--robustness-minutes str 60,1 2,0.5 robustness: long,short recording (minutes)
--speech-models str - - speech: NAME=DIR,... trained on realspk without trimming
--speech-trained-alike str - - speech: NAME=DIR,... the same, trimming in training
--speech-candidates str - - speech: ';'-separated candidates (default: all)
--extraction-model str - - extraction: model folder, or random-base
--extraction-files int - - extraction: realspk files (default: all 1,040)
--extraction-parts str - - extraction: of throughput,machinery,resume,memory,scoring
--identification-model str - - identification: folder with its calibration.json
--front-end-models str - - sherpa: ARCH/FRONT=DIR,... (each ARCH's first: its reference)
--sherpa-parts str front-end,speed front-end,speed sherpa: of front-end,speed
--diarization-model str - - diarization: folder with its calibration.json
"""


@dataclasses.dataclass
class Row:
    """One line of a table. The target reads ``ratio >= target`` when
    ``higher_is_better``, else ``<=``; with ``absolute``, ``ours`` against it."""

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

    @classmethod
    def of(cls, section: str, name: str, ours, reference=None, unit="", **kw) -> Row:
        """A row whose ratio follows the one rule: reference / ours for a time
        where higher is better (a speed-up), ours / reference otherwise.

        Example
        -------
        >>> Row.of("s", "t", 2.0, 4.0, "ms").ratio, Row.of("s", "m", 3, 2, "MiB").ratio
        (2.0, 1.5)
        """
        row = cls(section, name, ours, reference, unit, **kw)
        if finite(ours) and finite(reference):
            speedup = unit in TIME_UNITS and row.higher_is_better
            top, bottom = (reference, ours) if speedup else (ours, reference)
            row.ratio = top / bottom if bottom else None
        return row

    @property
    def passed(self) -> Optional[bool]:
        """True/False against the target; None when there is no target."""
        value = self.ours if self.absolute else self.ratio
        if self.target is None or value is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target

    def as_dict(self) -> dict:
        """JSON-ready form, including ``passed``."""
        return {**dataclasses.asdict(self), "passed": self.passed}


def finite(value) -> bool:
    """Whether ``value`` is a number, not NaN nor infinite."""
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A row as data (see :func:`table`); a row whose ``ours`` key is missing
    from the measured values is left out."""

    name: str
    ours: Optional[str]
    reference: Optional[str] = None
    unit: str = ""
    target: Union[float, str, None] = None
    lower: bool = False
    absolute: bool = False
    note: str = ""
    ratio: bool = True
    when: str = ""
    scale: float = 1.0


def table(text: str) -> tuple[Spec, ...]:
    """The specs of a table written as text, one block per row::

        name template (not indented)
            OURS[ / REFERENCE], UNIT[, FLAGS]
            note template, continued on further indented lines

    ``OURS`` and ``REFERENCE`` are keys of the measured values (``-``: none,
    a row that only carries its note). FLAGS, space-separated: ``>= X`` or
    ``<= X`` a target (``<=`` also: lower is better; ``X`` a number or a key),
    ``lower``, ``absolute`` (the target applies to ours), ``no-ratio``,
    ``when=KEY``, ``x1000`` (seconds to ms).

    Example
    -------
    >>> (spec,) = table('''
    ...     {n} files: time
    ...         ours_s / ref_s, ms, >= 2 x1000
    ...         median of {repeats}
    ... ''')
    >>> spec.ours, spec.reference, spec.unit, spec.target, spec.scale, spec.note
    ('ours_s', 'ref_s', 'ms', 2.0, 1000.0, 'median of {repeats}')
    """
    blocks: list[list[str]] = []
    for line in textwrap.dedent(text).strip("\n").splitlines():
        if line.strip() and not line[0].isspace():
            blocks.append([line])
        elif line.strip():
            blocks[-1].append(line.strip())
    specs = []
    for name, fields, *note in blocks:
        keys, unit, *rest = [f.strip() for f in fields.split(",", 2)]
        ours, _, reference = (k.strip() for k in keys.partition("/"))
        words = (rest[0] if rest else "").split()
        options: dict = {"lower": "lower" in words or "<=" in words}
        for sign in (">=", "<="):
            if sign in words:
                value = words[words.index(sign) + 1]
                options["target"] = value if value[0].isalpha() else float(value)
        when = [w[5:] for w in words if w.startswith("when=")]
        specs.append(
            Spec(
                name,
                None if ours == "-" else ours,
                reference or None,
                unit,
                absolute="absolute" in words,
                note=" ".join(note),
                ratio="no-ratio" not in words,
                when=when[0] if when else "",
                scale=1e3 if "x1000" in words else 1.0,
                **options,
            )
        )
    return tuple(specs)


def render(section: str, specs: Sequence[Spec], values: Mapping) -> list[Row]:
    """The rows of ``specs`` filled from one measurement's ``values``.

    Example
    -------
    >>> spec = Spec("{n} files", "ours_s", "ref_s", "ms", target=2.0, scale=1e3)
    >>> (row,) = render("demo", [spec], {"n": 3, "ours_s": 0.5, "ref_s": 1.5})
    >>> row.name, row.ours, row.ratio, row.passed
    ('3 files', 500.0, 3.0, True)
    """
    rows = []
    for spec in specs:
        absent = spec.ours is not None and spec.ours not in values
        if absent or (spec.when and not values.get(spec.when)):
            continue
        ours, reference = (
            None if values.get(key) is None else values[key] * spec.scale
            for key in (spec.ours, spec.reference)
        )
        target = spec.target
        target = values.get(target) if isinstance(target, str) else target
        name, note = spec.name.format(**values), spec.note.format(**values)
        kw = {"target": target, "higher_is_better": not spec.lower, "note": note}
        row = Row.of(section, name, ours, reference, spec.unit, **kw)
        row.absolute, row.ratio = spec.absolute, row.ratio if spec.ratio else None
        rows.append(row)
    return rows


def skipped(section: str, name: str, why: str) -> list[Row]:
    """The one row of a benchmark (or part) that could not run, and why."""
    return [Row(section, name, None, note=f"skipped: {why}")]


def run_parts(section: str, parts: Sequence[tuple[str, Callable[[Path], list]]]):
    """Runs a benchmark's parts, each in its own temporary folder, timed on
    stderr; a part that raises leaves a ``section failed`` row naming the error
    and the other parts still report."""
    rows: list[Row] = []
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


def _number(value: Optional[float]) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """Header and one tuple of formatted cells per row."""
    lines = [HEADER]
    for row in rows:
        target = ""
        if row.target is not None:
            sense = ">= " if row.higher_is_better else "<= "
            target = f"{sense}{row.target:g}" + (
                f" {row.unit}" if row.absolute else "x"
            )
        lines.append(
            (
                row.section,
                row.name,
                _number(row.ours),
                _number(row.reference),
                row.unit,
                "" if row.ratio is None else f"{row.ratio:.2f}x",
                target,
                {True: "PASS", False: "FAIL", None: "-"}[row.passed],
            )
        )
    return lines


def format_table(rows: Sequence[Row]) -> str:
    """The rows as one fixed-width text table."""
    lines = _cells(rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for k, line in enumerate(lines):
        cells = [
            c.rjust(widths[i]) if i in (2, 3, 5) else c.ljust(widths[i])
            for i, c in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (for the docs)."""
    lines = _cells(rows)
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    out += [
        "| " + " | ".join(c.replace("|", "/") for c in li) + " |" for li in lines[1:]
    ]
    return "\n".join(out)


def rows_from_json(path: Union[str, os.PathLike]) -> list[Row]:
    """The rows of a table written by ``python -m benchmarks --json``."""
    fields = {f.name for f in dataclasses.fields(Row)}
    rows = json.loads(Path(path).read_text())["rows"]
    return [Row(**{k: v for k, v in r.items() if k in fields}) for r in rows]


def report(paths: list[str]) -> int:
    """``python -m benchmarks.report FILE...``: the machine line and Markdown
    table of each result file (the docs' tables are this output)."""
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


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """The options; ``--quick`` shrinks every default size for a smoke run."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"of {SECTIONS}")
    parser.add_argument("--skip", default="", help="comma-separated names to skip")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--json", default="benchmarks/results.json", help="output")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="training: cuda runs the GPU rows instead of the CPU ones",
    )
    options = [line.split(None, 4) for line in OPTIONS.strip().splitlines()]
    types = {"str": str, "int": int, "float": float}
    for flag, kind, _, _, text in options:
        parser.add_argument(flag, type=types[kind], default=None, help=text)
    args = parser.parse_args(argv)
    for flag, kind, full, quick, _ in options:
        dest, value = flag[2:].replace("-", "_"), quick if args.quick else full
        if getattr(args, dest) is None and value != "-":
            setattr(args, dest, types[kind](value))
    args.thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = (set(selected) | skip) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    args.sections = [s for s in SECTIONS if s in selected and s not in skip]
    return args


def machine() -> dict:
    """What the figures were measured on, with the kernels' CPU capability."""
    import torch

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average": os.getloadavg(),
        "cpu_capability": cpu_capability(),
    }
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else ():
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    return info


def main(argv: Optional[list[str]] = None) -> int:
    """Runs the selected benchmarks, prints the table, writes the JSON."""
    import warnings

    from speechbrain_eres2net.dataio.files import write_text_atomic

    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    rows: list[Row] = []
    started, load_at_start = time.time(), os.getloadavg()
    for name in args.sections:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        module, function = BENCHMARKS[name].split(":")
        try:
            bench = getattr(importlib.import_module(f"benchmarks.{module}"), function)
            rows += bench(args)
        except Exception as error:  # one failing benchmark must not hide the others
            note = f"{type(error).__name__}: {error}"[:300]
            rows.append(Row(name, "section failed", None, note=note))
        elapsed = time.perf_counter() - start
        print(f"[benchmarks] {name} done in {elapsed:.0f} s", file=sys.stderr)
    print(format_table(rows))
    notes = [f"{r.section} / {r.name}: {r.note}" for r in rows if r.note]
    if notes:
        print("\nnotes:\n" + "\n".join(notes))
    payload = {
        "command": "python -m benchmarks "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {**machine(), "load_average_start": load_at_start},
        "rows": [r.as_dict() for r in rows],
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(payload, indent=1))
    return 1 if any(r.name == "section failed" for r in rows) else 0
