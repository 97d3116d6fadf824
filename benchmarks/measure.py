"""How the figures are measured: timing, fresh processes, twin models, realspk.

Speeds are compared by interleaving our run and the reference inside one loop
(:func:`interleaved_times`), so that load drift on a shared machine hits both
alike. Peak memory is the ``VmHWM`` of a fresh process per measurement
(:func:`run_isolated`, which runs :func:`worker` there).
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
REALSPK = Path(
    os.environ.get("ERES2NET_REALSPK", REPO.parent / "shared" / "data" / "realspk")
)


def interleaved_times(functions: Mapping, repeats: int, warmup=1, pause=0.0) -> dict:
    """Median seconds per call of each function, calls interleaved, after
    ``warmup`` untimed rounds (allocator, oneDNN primitive caches). ``pause``:
    untimed sleep before each call, as thread pools (OpenMP's, ONNX Runtime's,
    OpenVINO's) spin after one and would share the cores with the next.

    Example
    -------
    >>> sorted(interleaved_times({"a": lambda: 1, "b": lambda: 2}, 2))
    ['a', 'b']
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


def cpu_capability() -> str:
    """``torch.backends.cpu.get_cpu_capability()``: the ISA of the kernels."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def twin_models(m_channels: int = 32, seed: int = 0):
    """(official 3D-Speaker ERes2Net, ours) with identical random weights and
    randomised BN statistics (so that folding them is not a no-op)."""
    import torch

    from speechbrain_eres2net import ERes2Net

    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from oracle import official

    torch.manual_seed(seed)
    reference = official()[0].ERes2Net(m_channels=m_channels).eval()
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
    return reference, ERes2Net.from_3dspeaker(reference.state_dict()).eval()


def child_env(threads: int, extra: Optional[dict] = None) -> dict:
    """A child's environment: its threads, this checkout importable, and no
    network (every folder is local: a Hub look-up would be a bug)."""
    env = {**os.environ, **(extra or {}), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_child(argv: Sequence[str], env: dict, timeout: float = 3600.0):
    """(wall-clock seconds, finished process) of a command run in the
    checkout; RuntimeError with its stderr tail when it fails."""
    start = time.perf_counter()
    process = subprocess.run(
        list(argv), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if process.returncode != 0:
        what = " ".join(map(str, argv[1:4]))
        tail = process.stderr.strip()[-2000:]
        raise RuntimeError(f"exit {process.returncode} of {what} ...: {tail}")
    return time.perf_counter() - start, process


def run_isolated(target: str, kwargs: dict, threads=2, timeout=3600.0, env=None):
    """``module:function(**kwargs)`` run in a fresh Python (:mod:`benchmarks.
    worker`): its dict plus ``base_rss_mb`` (peak RSS before the call, imports
    done) and ``peak_rss_mb``. ``env`` adds variables (``ONEDNN_MAX_CPU_ISA``
    is read when torch is imported)."""
    argv = [sys.executable, "-m", "benchmarks.worker", target, json.dumps(kwargs)]
    _, process = run_child(argv, child_env(threads, env), timeout)
    return json.loads(process.stdout.strip().splitlines()[-1])


def realspk_list(*names: str) -> list[tuple[str, str]]:
    """(speaker, path relative to wav/) of realspk list files, in order."""
    pairs = []
    for name in names:
        for line in (REALSPK / name).read_text().splitlines():
            if line.strip():
                speaker, rel = line.split()[:2]
                pairs.append((speaker, rel))
    return pairs


def realspk_files(limit: Optional[int] = None) -> list[str]:
    """Paths (relative to wav/) of realspk train and dev, evenly spread."""
    rels = [rel for _, rel in realspk_list("train_list.txt", "dev_list.txt")]
    if limit is not None and limit < len(rels):
        rels = rels[:: len(rels) // limit][:limit]
    return rels


def dev_speakers() -> dict[str, list[str]]:
    """realspk dev speaker -> its recordings, speakers sorted, list order."""
    speakers: dict[str, list[str]] = {}
    for speaker, rel in realspk_list("dev_list.txt"):
        speakers.setdefault(speaker, []).append(rel)
    return dict(sorted(speakers.items()))


def has_realspk(*names: str) -> bool:
    """Whether the realspk list files ``names`` are there."""
    return all((REALSPK / name).is_file() for name in names)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (``VmHWM``), in MiB:
    ``getrusage`` would carry the forking parent's peak across ``execve``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(argv: list[str]) -> int:
    """``python -m benchmarks.worker module:function JSON``: calls it and prints
    its dict plus the peak RSS before the call (the package imported, so that
    peak - base is the work itself) and after it."""
    target, kwargs = argv[0], json.loads(argv[1])
    importlib.import_module("speechbrain_eres2net")
    module, function = target.split(":")
    function = getattr(importlib.import_module(module), function)
    base = peak_rss_mb()
    result = function(**kwargs)
    print(json.dumps({**result, "base_rss_mb": base, "peak_rss_mb": peak_rss_mb()}))
    return 0
