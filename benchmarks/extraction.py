"""Embedding at scale: ``eres2net embed`` throughput, memory, resume; scoring size.

Section ``extraction`` of ``python -m benchmarks``. Parts 1 and 3 need a
model folder (``--extraction-model``) and realspk; part 2 needs realspk;
part 4 needs nothing (``--extraction-model random-base`` builds an
ERes2Net-base folder with random weights for the run). Every figure comes
from the run that prints it:

1. **Throughput.** Files/s of the whole command ``eres2net embed --model
   FOLDER <list> --out X.npz --vad off --no-progress`` over realspk train +
   dev (1,040 files), timed wall clock from the shell's point of view
   (interpreter start, imports, model load, embedding, merge): (a) one
   process with ``threads`` threads, (b) ``torchrun --nproc_per_node=2``
   with one thread each, (c) one process with ``--num-workers 2``. The
   reference is the loop a SpeechBrain user writes over the same files and
   folder: ``SpeakerRecognition.from_hparams(source=FOLDER)``, then per file
   ``read_audio`` and ``encode_batch`` under ``torch.no_grad``, the loop
   alone timed (model load excluded). Target (a) >= 2x. Also the cost of
   the streaming and resume machinery: :func:`extract_embeddings` to an
   ``.npz`` vs consuming :meth:`SpeakerEmbedder.iter_files` without writing,
   in one process with one embedder, over at most 240 of the files (five
   passes); target <= 1.05x.
2. **Memory.** Peak RSS of the command over 20,000 vs 1,000 files (realspk
   tiled with symlinks), each in a fresh process, with a tiny random model
   folder (``m_channels`` 8, one block a stage) so that it takes minutes:
   what is measured is that the journal writer, the merge and the engine
   do not grow with the file count (one key a link). Target <= 1.1x.
3. **Resume.** The command of (a) straight (T), then again into a new
   output, SIGKILLed once its ``<out>.parts/*.scp`` hold half the files, and
   rerun (R). Target R / T <= 0.6; the resumed output must equal the
   straight one (same keys in the same order, vectors within 1e-5).
4. **Scoring at VoxCeleb1-H size.** Random 192-d embeddings of 145,000
   keys, 550,000 random trials, AS-norm with a 6,000-entry cohort (top 300):
   time and peak RSS of :func:`evaluate_trials` in a fresh process
   (informative).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .common import (
    REALSPK,
    REPO,
    Row,
    interleaved_times,
    run_isolated,
    run_parts,
    set_threads,
)

SECTION = "extraction"
THROUGHPUT_TARGET = 2.0
# Real speech calibrating the opt-in int8 row (the first files of the run).
INT8_CALIBRATION_FILES = 32
MACHINERY_TARGET = 1.05
MEMORY_TARGET = 1.1
RESUME_TARGET = 0.6
RESUME_ATOL = 1e-5
KILL_FRACTION = 0.5
# Seconds between two looks at the journal of the run that is killed: a
# batch of the CPU default (20 s of audio) takes longer than this.
POLL_S = 0.02
# Seconds of sleep before each timed call of the machinery-cost rounds
# (thread pools spin after a call; see benchmarks.common.interleaved_times).
PAUSE_S = 0.2
EMBEDDING_SIZE = 192
# The tiny random model of the memory rows: the writer and the merge are
# measured, not the network.
TINY_MODEL = {"m_channels": 8, "num_blocks": [1, 1, 1, 1]}
# ``--extraction-model random-base``: ERes2Net-base (the lobe's defaults,
# 6.6 M parameters) with random weights, built for the run, so that anyone
# can rerun the throughput and resume rows without a trained model.
RANDOM_BASE = "random-base"
COMMAND_TIMEOUT_S = 3600.0
PARTS = ("throughput", "machinery", "resume", "memory", "scoring")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of everything one run measures."""

    files: Optional[int]
    """realspk files of the throughput and resume rows (None: all 1,040)."""
    machinery_files: int
    """At most this many of them in the machinery-cost row (five passes)."""
    machinery_repeats: int
    """Timed interleaved rounds of the machinery-cost row."""
    tiled: tuple[int, int]
    """(small, large) file counts of the memory rows."""
    keys: int
    """Embeddings of the scoring simulation."""
    trials: int
    """Trials of the scoring simulation."""
    cohort: int
    """AS-norm cohort entries of the scoring simulation."""
    top_k: int
    """AS-norm top-k of the scoring simulation."""


FULL = Sizes(
    files=None,
    machinery_files=240,
    machinery_repeats=2,
    tiled=(1_000, 20_000),
    keys=145_000,
    trials=550_000,
    cohort=6_000,
    top_k=300,
)
QUICK = Sizes(
    files=40,
    machinery_files=40,
    machinery_repeats=1,
    tiled=(200, 400),
    keys=2_000,
    trials=5_000,
    cohort=200,
    top_k=100,
)


# ------------------------------------------------------------------ helpers


def realspk_paths(limit: Optional[int] = None) -> list[Path]:
    """Absolute paths of realspk train + dev (evenly spread when limited)."""
    from .robustness import realspk_files

    return [REALSPK / "wav" / rel for rel in realspk_files(limit)]


def write_list(path: Path, files: Sequence[Path]) -> Path:
    """A list file of absolute paths, one a line (``eres2net embed`` input).
    Links stay links: a tiled corpus keeps one key per link."""
    path.write_text("".join(f"{Path(f).absolute()}\n" for f in files))
    return path


def command_env(threads: int) -> dict[str, str]:
    """Environment of a command: its threads, this checkout importable, and
    no network (the folders are local; a Hub look-up would be a bug)."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    return env


def embed_argv(model: str, listing: Path, out: Path, *extra: str) -> list[str]:
    """``eres2net embed`` of the issue, as this interpreter runs it."""
    return [
        sys.executable,
        "-m",
        "speechbrain_eres2net.cli",
        *embed_args(model, listing, out, *extra),
    ]


def embed_args(model: str, listing: Path, out: Path, *extra: str) -> list[str]:
    """The arguments of ``eres2net embed`` (after the program name)."""
    return [
        "embed",
        "--model",
        str(model),
        str(listing),
        "--out",
        str(out),
        "--vad",
        "off",
        "--no-progress",
        *extra,
    ]


def torchrun_argv(model: str, listing: Path, out: Path, processes: int) -> list[str]:
    """The same command under ``torchrun --nproc_per_node=processes``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        f"--master_port={free_port()}",
        "-m",
        "speechbrain_eres2net.cli",
        *embed_args(model, listing, out),
    ]


def free_port() -> int:
    """A TCP port nobody listens on now (torchrun's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed_command(argv: Sequence[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock seconds of a command and its stderr.

    Raises
    ------
    RuntimeError
        The command failed; its stderr tail is in the message.
    """
    start = time.perf_counter()
    process = subprocess.run(
        list(argv),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(
            f"exit {process.returncode} of {' '.join(argv[1:4])} ...: "
            f"{process.stderr.strip()[-1500:]}"
        )
    return seconds, process.stderr


def npz_keys(path: Path) -> list[str]:
    """The keys of an ``.npz``, in the order they were written."""
    with np.load(path) as data:
        return list(data.files)


def compare_npz(first: Path, second: Path) -> tuple[int, int, float]:
    """(keys at the same position, keys of ``first``, max abs difference over
    the keys both hold) of two ``.npz`` embedding files."""
    with np.load(first) as a, np.load(second) as b:
        keys_a, keys_b = list(a.files), list(b.files)
        in_place = sum(x == y for x, y in zip(keys_a, keys_b))
        common = set(keys_a) & set(keys_b)
        diff = max(
            (float(np.max(np.abs(a[k] - b[k]))) for k in common), default=float("nan")
        )
    return in_place, len(keys_a), diff


def min_cosine_npz(first: Path, second: Path) -> float:
    """The worst cosine between the embeddings two ``.npz`` files hold for
    the keys of ``first`` (every one must be in ``second``).

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> np.savez(folder / "a.npz", u=np.array([1.0, 0.0]), v=np.array([0.0, 2.0]))
    >>> np.savez(folder / "b.npz", v=np.array([0.0, 1.0]), u=np.array([1.0, 1.0]))
    >>> round(min_cosine_npz(folder / "a.npz", folder / "b.npz"), 4)
    0.7071
    """
    with np.load(first) as a, np.load(second) as b:
        keys = list(a.files)
        x = np.stack([a[k].ravel() for k in keys])
        y = np.stack([b[k].ravel() for k in keys])
    cos = np.sum(x * y, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return float(cos.min())


def cpu_capability() -> str:
    """``torch.backends.cpu.get_cpu_capability()`` (the kernels' ISA)."""
    return str(torch.backends.cpu.get_cpu_capability())


# ---------------------------------------------------------------- workers


def speechbrain_loop(model: str, listing: str, savedir: str, out: str) -> dict:
    """Worker: a SpeechBrain user's loop over the files of ``listing``.

    ``SpeakerRecognition.from_hparams(source=model)`` (untimed), then per
    file ``read_audio`` and ``encode_batch`` under ``torch.no_grad``, timed
    as a whole. The embeddings go to ``out`` (``.npy``, list order) so that
    the caller can check both sides computed the same thing.
    """
    import speechbrain.dataio.dataio
    from speechbrain.inference.speaker import SpeakerRecognition

    files = [line for line in Path(listing).read_text().splitlines() if line]
    recognizer = SpeakerRecognition.from_hparams(source=model, savedir=savedir)
    embeddings = []
    start = time.perf_counter()
    with torch.no_grad():
        for path in files:
            wav = speechbrain.dataio.dataio.read_audio(path)
            embeddings.append(recognizer.encode_batch(wav.unsqueeze(0))[0, 0])
    seconds = time.perf_counter() - start
    np.save(out, torch.stack(embeddings).numpy())
    return {
        "seconds": seconds,
        "files": len(files),
        "threads": torch.get_num_threads(),
        "class": type(recognizer).__name__,
    }


def machinery_cost(model: str, listing: str, folder: str, repeats: int) -> dict:
    """Worker: :func:`extract_embeddings` to an ``.npz`` vs the bare
    :meth:`SpeakerEmbedder.iter_files` loop, one embedder, interleaved.

    One untimed ``iter_files`` pass first, so that neither side pays for the
    first sight of each batch shape (oneDNN primitive caches).
    """
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder, expand_inputs
    from speechbrain_eres2net.inference.extraction import extract_embeddings

    embedder = SpeakerEmbedder.from_folder(model, fast=True, vad="off")
    files = expand_inputs([listing])
    runs = iter(range(1_000_000))

    def consume() -> None:
        for _ in embedder.iter_files(files):
            pass

    def extract() -> None:
        out = Path(folder) / f"machinery_{next(runs)}.npz"
        done = extract_embeddings(embedder, files, out, progress=False)
        if done.embedded != len(files):
            raise RuntimeError(f"not embedded: {done.errors}")
        out.unlink()

    consume()
    times = interleaved_times(
        {"iter_files": consume, "extract_embeddings": extract},
        repeats,
        warmup=0,
        pause=PAUSE_S,
    )
    model_ = embedder.embedding_model
    return {
        "times": times,
        "files": len(files),
        "engine": f"{getattr(model_, 'engine', 'eager')} "
        f"{getattr(model_, 'precision', 'fp32')}",
        "threads": torch.get_num_threads(),
    }


def embed_in_process(args: list[str]) -> dict:
    """Worker: ``eres2net embed`` run in this process (its peak RSS is this
    process's), timed."""
    from speechbrain_eres2net.cli.main import main

    start = time.perf_counter()
    code = main(args)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"eres2net {' '.join(args)} exited {code}")
    return {"seconds": seconds}


def voxceleb_like_names(count: int) -> list[str]:
    """``count`` distinct keys shaped like VoxCeleb's ``idNNNNN/video/NNNNN.wav``
    (their length is part of what the scorer holds in memory)."""
    return [
        f"id{10000 + k // 30}/{k // 6 % 5:011d}/{k % 6 + 1:05d}.wav"
        for k in range(count)
    ]


def score_simulated(
    keys: int, trials: int, cohort: int, top_k: int, folder: str, seed: int
) -> dict:
    """Worker: AS-norm scoring of random embeddings, timed.

    The embeddings, cohort and trial list are made first (untimed);
    ``rss_before_mb`` is the peak RSS at that point, so the caller can tell
    the data from what :func:`evaluate_trials` itself adds.
    """
    from speechbrain_eres2net.evaluation.pipeline import evaluate_trials

    from .worker import peak_rss_mb

    rng = np.random.default_rng(seed)
    names = voxceleb_like_names(keys)
    matrix = rng.standard_normal((keys, EMBEDDING_SIZE), dtype=np.float32)
    # One array per key, as np.load of an .npz gives them.
    embeddings = {name: row.copy() for name, row in zip(names, matrix)}
    del matrix
    enrol = rng.integers(0, keys, trials)
    test = rng.integers(0, keys, trials)
    test = np.where(test == enrol, (test + 1) % keys, test)
    labels = rng.integers(0, 2, trials)
    trials_file = Path(folder) / "trials.txt"
    with open(trials_file, "w") as f:
        for label, e, t in zip(labels.tolist(), enrol.tolist(), test.tolist()):
            f.write(f"{label} {names[e]} {names[t]}\n")
    bank = rng.standard_normal((cohort, EMBEDDING_SIZE), dtype=np.float32)
    before = peak_rss_mb()
    start = time.perf_counter()
    results = evaluate_trials(
        embeddings,
        trials_file,
        Path(folder) / "scores",
        cohort=bank,
        top_k=top_k,
        plots=False,
    )
    return {
        "seconds": time.perf_counter() - start,
        "rss_before_mb": before,
        "eer": results["eer"],
        "asnorm_eer": results["asnorm"]["eer"],
        "n_trials": results["n_trials"],
    }


# ------------------------------------------------------------------ parts


def throughput_rows(model: str, folder: Path, files: list[Path], threads: int):
    """Part 1: files/s of the command four ways vs SpeechBrain's loop.

    The loop runs before and after the commands, and the ratios use the
    mean of its two times: the speed of a shared machine drifts over the
    minutes a run takes (measured: the same command 80 to 140 ms a file).
    """
    listing = write_list(folder / "files.txt", files)
    reference_embeddings = folder / "speechbrain.npy"

    def reference_loop() -> dict:
        return run_isolated(
            "benchmarks.extraction:speechbrain_loop",
            {
                "model": str(model),
                "listing": str(listing),
                "savedir": str(folder / "speechbrain_savedir"),
                "out": str(reference_embeddings),
            },
            threads=threads,
            timeout=COMMAND_TIMEOUT_S,
            env={"HF_HUB_OFFLINE": "1"},
        )

    before = reference_loop()
    runs = {
        f"1 process x {threads} thr": (
            embed_argv(model, listing, folder / "one.npz"),
            threads,
            THROUGHPUT_TARGET,
        ),
        "torchrun --nproc_per_node=2, 1 thr each": (
            torchrun_argv(model, listing, folder / "torchrun.npz", 2),
            1,
            None,
        ),
        f"1 process x {threads} thr, --num-workers 2": (
            embed_argv(model, listing, folder / "workers.npz", "--num-workers", "2"),
            threads,
            None,
        ),
        f"1 process x {threads} thr, --precision int8 (opt-in)": (
            embed_argv(
                model,
                listing,
                folder / "int8.npz",
                "--precision",
                "int8",
                "--int8-calibration",
                str(write_list(folder / "int8.txt", files[:INT8_CALIBRATION_FILES])),
            ),
            threads,
            None,
        ),
    }
    timed = {}
    for what, (argv, thr, _) in runs.items():
        seconds, _ = timed_command(argv, command_env(thr))
        out = Path(argv[argv.index("--out") + 1])
        keys = npz_keys(out)
        if keys != [str(f) for f in files]:
            raise RuntimeError(f"{what}: {out} holds {len(keys)} keys, not the inputs")
        timed[what] = seconds
    after = reference_loop()
    reference_rate = 2 * len(files) / (before["seconds"] + after["seconds"])
    reference_note = (
        f"reference: SpeechBrain {before['class']}.from_hparams(source=folder) "
        f"(offline), per file read_audio + encode_batch under no_grad, "
        f"{before['threads']}thr, loop alone timed (model load excluded) before "
        f"and after our commands: {before['seconds']:.1f} s and "
        f"{after['seconds']:.1f} s, mean used; ours: the whole command, wall clock "
        "(interpreter start, imports, model load, merge included); --vad off; "
        f"cpu capability {cpu_capability()}"
    )
    rows = []
    for what, (argv, _, target) in runs.items():
        seconds = timed[what]
        out = Path(argv[argv.index("--out") + 1])
        note = f"{len(files)} files in {seconds:.1f} s; " + reference_note
        if target is not None or "int8" in what:
            note += f"; {_agreement(out, reference_embeddings, npz_keys(out))}"
        if "int8" in what:
            note += (
                f"; calibrated on the first {INT8_CALIBRATION_FILES} files "
                "(calibration inside the timed command)"
            )
        rate = len(files) / seconds
        rows.append(
            Row(
                SECTION,
                f"eres2net embed, realspk {len(files)} files, {what} (files/s)",
                rate,
                reference_rate,
                "files/s",
                rate / reference_rate,
                target,
                True,
                note,
            )
        )
    # The fixed cost inside each figure above: with a small model or few
    # files it, not the embedding, sets the files/s.
    single = write_list(folder / "one_file.txt", files[:1])
    seconds, _ = timed_command(
        embed_argv(model, single, folder / "one_file.npz"), command_env(threads)
    )
    rows.append(
        Row(
            SECTION,
            f"eres2net embed start-up: the same command on 1 file, {threads}thr",
            seconds,
            unit="s",
            note="interpreter start, imports, model load (fast-path conversion), "
            "one file, merge; part of every command timed above",
        )
    )
    return rows


def _agreement(ours: Path, reference: Path, keys: list[str]) -> str:
    """The worst cosine between our embeddings and SpeechBrain's, same files."""
    ref = np.load(reference)
    with np.load(ours) as data:
        mine = np.stack([data[k] for k in keys])
    cos = np.sum(mine * ref, 1) / (
        np.linalg.norm(mine, axis=1) * np.linalg.norm(ref, axis=1) + 1e-12
    )
    return f"min cosine to SpeechBrain's embeddings {float(cos.min()):.6f}"


def machinery_rows(model: str, folder: Path, files: list[Path], sizes: Sizes, threads):
    """Part 1, last row: the cost of streaming to disk and of the journal."""
    listing = write_list(folder / "files.txt", files)
    result = run_isolated(
        "benchmarks.extraction:machinery_cost",
        {
            "model": str(model),
            "listing": str(listing),
            "folder": str(folder),
            "repeats": sizes.machinery_repeats,
        },
        threads=threads,
        timeout=COMMAND_TIMEOUT_S,
        env={"HF_HUB_OFFLINE": "1"},
    )
    ours = result["times"]["extract_embeddings"]
    bare = result["times"]["iter_files"]
    return [
        Row(
            SECTION,
            f"streaming + resume machinery cost, realspk {result['files']} files, "
            f"{result['threads']}thr",
            ours,
            bare,
            "s",
            ours / bare,
            MACHINERY_TARGET,
            False,
            "ours: extract_embeddings to an .npz (journal parts, merge, count "
            "check); reference: SpeakerEmbedder.iter_files consumed without "
            f"writing; same embedder ({result['engine']}), same process, --vad off; "
            f"median of {sizes.machinery_repeats} interleaved rounds after one "
            f"untimed pass; cpu capability {cpu_capability()}",
        )
    ]


def random_model_folder(out: Path, config: dict, title: str, seed: int = 0) -> Path:
    """A model folder of a random ERes2Net of ``config`` (Kaldi fbank front
    end), written and checked by the package's own :func:`write_model_folder`:
    speed and memory do not depend on the weights."""
    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.export.card import ModelCard
    from speechbrain_eres2net.export.import_3dspeaker import kaldi_front_end_nodes
    from speechbrain_eres2net.export.model_folder import write_model_folder
    from speechbrain_eres2net.export.yaml_nodes import new_node

    config = {"feat_dim": 80, "embedding_size": EMBEDDING_SIZE, **config}
    torch.manual_seed(seed)
    model = ERes2Net(**config).eval()
    nodes = {
        **kaldi_front_end_nodes(),
        "embedding_model": new_node("speechbrain_eres2net.ERes2Net", **config),
    }
    card = ModelCard(
        title=f"{title} (benchmark only)",
        training_data="none: random weights",
        notes=["For measuring speed and memory; its embeddings mean nothing."],
    )
    return write_model_folder(out, nodes, {"embedding_model": model}, card)


def tile_links(folder: Path, sources: Sequence[Path], count: int) -> list[Path]:
    """``count`` symlinks to ``sources`` taken in turn (a corpus of any size
    from a small one, without copying audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for k in range(count):
        link = folder / f"f{k:06d}.wav"
        os.symlink(sources[k % len(sources)], link)
        links.append(link)
    return links


def memory_rows(folder: Path, sizes: Sizes, threads: int) -> list[Row]:
    """Part 2: peak RSS of the command, large tiled corpus vs small one."""
    model = random_model_folder(
        folder / "tiny_model", TINY_MODEL, "Tiny random ERes2Net"
    )
    small, large = sizes.tiled
    links = tile_links(folder / "tiled", realspk_paths(), large)
    results = {}
    for count in (small, large):
        listing = write_list(folder / f"files_{count}.txt", links[:count])
        results[count] = run_isolated(
            "benchmarks.extraction:embed_in_process",
            {"args": embed_args(str(model), listing, folder / f"out_{count}.npz")},
            threads=threads,
            timeout=COMMAND_TIMEOUT_S,
            env={"HF_HUB_OFFLINE": "1"},
        )
        keys = npz_keys(folder / f"out_{count}.npz")
        if len(keys) != count:
            raise RuntimeError(f"{count} files embedded into {len(keys)} keys")
    big, little = results[large], results[small]
    note = (
        f"fresh process each, eres2net embed in-process, tiny random model "
        f"(m_channels {TINY_MODEL['m_channels']}, blocks {TINY_MODEL['num_blocks']}), "
        f"--vad off, .npz out, {threads}thr; work itself (peak - base) "
        f"{big['peak_rss_mb'] - big['base_rss_mb']:.0f} vs "
        f"{little['peak_rss_mb'] - little['base_rss_mb']:.0f} MiB; "
        f"{large / big['seconds']:.0f} vs {small / little['seconds']:.0f} files/s"
    )
    return [
        Row(
            SECTION,
            f"eres2net embed peak RSS, {large:,} vs {small:,} files (realspk tiled)",
            big["peak_rss_mb"],
            little["peak_rss_mb"],
            "MiB",
            big["peak_rss_mb"] / little["peak_rss_mb"],
            MEMORY_TARGET,
            False,
            note,
        )
    ]


def journal_lines(parts: Path) -> int:
    """Complete lines of every ``*.scp`` of an ``<out>.parts`` journal (one a
    finished embedding)."""
    total = 0
    for scp in parts.glob("*.scp"):
        # The merge may remove the journal meanwhile.
        with contextlib.suppress(OSError):
            total += scp.read_bytes().count(b"\n")
    return total


def run_and_kill(
    argv: Sequence[str], env: dict[str, str], parts: Path, at: int, log: Path
) -> Optional[int]:
    """Starts a command, SIGKILLs it once its journal holds ``at`` embeddings.

    Returns
    -------
    int or None
        Embeddings in the journal after the kill; None when the command
        ended before it could be killed.
    """
    with open(log, "w") as errors:
        process = subprocess.Popen(
            list(argv), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            while process.poll() is None:
                if journal_lines(parts) >= at:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return journal_lines(parts)
                time.sleep(POLL_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0:
        raise RuntimeError(
            f"exit {process.returncode} before the kill: {log.read_text()[-1500:]}"
        )
    return None


def resume_rows(model: str, folder: Path, files: list[Path], threads: int):
    """Part 3: a run killed halfway and rerun vs a straight run."""
    listing = write_list(folder / "files.txt", files)
    env = command_env(threads)
    straight = folder / "straight.npz"
    resumed = folder / "resumed.npz"
    total, _ = timed_command(embed_argv(model, listing, straight), env)
    argv = embed_argv(model, listing, resumed)
    at = int(np.ceil(KILL_FRACTION * len(files)))
    done = run_and_kill(
        argv, env, Path(f"{resumed}.parts"), at, folder / "killed.stderr.txt"
    )
    rerun, stderr = timed_command(argv, env)
    found = re.search(r"resumed: (\d+) of (\d+)", stderr)
    if done is None:
        kill = "the run ended before it could be killed (the rerun redid it all)"
    else:
        kill = (
            f"killed with {done} of {len(files)} files in the journal; the rerun "
            + (f"found {found.group(1)} done" if found else "reported no resume")
        )
    in_place, keys, diff = compare_npz(straight, resumed)
    resumed_keys = len(npz_keys(resumed))
    same = in_place == keys == resumed_keys
    return [
        Row(
            SECTION,
            f"eres2net embed resumed after SIGKILL at {KILL_FRACTION:.0%}, realspk "
            f"{len(files)} files, {threads}thr: rerun vs straight run",
            rerun,
            total,
            "s",
            rerun / total,
            RESUME_TARGET,
            False,
            f"{kill}; whole commands, wall clock (start and model load in both); "
            "--vad off",
        ),
        Row(
            SECTION,
            "resumed output vs straight output: max |difference|",
            diff,
            unit="max abs",
            target=RESUME_ATOL,
            higher_is_better=False,
            note=f"{in_place} of {keys} keys at the same position"
            + ("" if same else " (KEYS DIFFER)")
            + "; batches differ between the runs (other files left to group)",
            absolute=True,
        ),
        Row(
            SECTION,
            "resumed output vs straight output: keys in the same order",
            100.0 * in_place / max(keys, resumed_keys),
            unit="% keys",
            target=100.0,
            higher_is_better=True,
            note=f"{in_place} of {keys} keys at the same position",
            absolute=True,
        ),
    ]


def scoring_rows(folder: Path, sizes: Sizes, seed: int) -> list[Row]:
    """Part 4: AS-norm scoring of a VoxCeleb1-H-sized list, simulated."""
    result = run_isolated(
        "benchmarks.extraction:score_simulated",
        {
            "keys": sizes.keys,
            "trials": sizes.trials,
            "cohort": sizes.cohort,
            "top_k": sizes.top_k,
            "folder": str(folder),
            "seed": seed,
        },
        threads=1,
        timeout=COMMAND_TIMEOUT_S,
    )
    what = (
        f"evaluate_trials, AS-norm, {sizes.keys:,} keys x {sizes.trials:,} trials, "
        f"cohort {sizes.cohort:,} top {sizes.top_k}"
    )
    data = result["rss_before_mb"] - result["base_rss_mb"]
    work = result["peak_rss_mb"] - result["rss_before_mb"]
    note = (
        f"random {EMBEDDING_SIZE}-d embeddings, random pairs and labels (EER "
        f"{result['eer']:.1%}, AS-norm {result['asnorm_eer']:.1%}: chance, as it "
        f"must be); plots off; scores.txt written; 1 thread"
    )
    return [
        Row(SECTION, f"{what}: time", result["seconds"], unit="s", note=note),
        Row(
            SECTION,
            f"{what}: peak RSS",
            result["peak_rss_mb"],
            unit="MiB",
            note=f"fresh process; the embeddings and the trial list took {data:.0f} "
            f"MiB, evaluate_trials added {work:.0f} MiB on top",
        ),
    ]


# ------------------------------------------------------------------ section


def bench_extraction(
    model: Optional[str],
    quick: bool = False,
    threads: int = 2,
    seed: int = 1234,
    files: Optional[int] = None,
    only: Optional[Sequence[str]] = None,
) -> list[Row]:
    """All rows of the section; a part that fails leaves a ``section failed`` row.

    Arguments
    ---------
    model : str, optional
        Model folder of the throughput and resume rows (skipped without one),
        or :data:`RANDOM_BASE` for ERes2Net-base with random weights.
    quick : bool
        Tiny sizes (:data:`QUICK`) for a smoke run.
    threads : int
        Threads of the single-process commands, the reference loop and the
        memory rows.
    seed : int
        Seed of the scoring simulation.
    files : int, optional
        realspk files of the throughput and resume rows (default: all 1,040;
        quick: 40), evenly spread; the machinery row takes at most
        ``machinery_files`` of them.
    only : list of str, optional
        The parts to run (of :data:`PARTS`; default: all).
    """
    unknown = sorted(set(only or ()) - set(PARTS))
    if unknown:
        raise ValueError(f"--extraction-parts: unknown {unknown}; expected of {PARTS}")
    sizes = QUICK if quick else FULL
    if files is not None:
        sizes = dataclasses.replace(sizes, files=files)
    set_threads(threads)
    have_corpus = all(
        (REALSPK / name).is_file() for name in ("train_list.txt", "dev_list.txt")
    )
    with contextlib.ExitStack() as stack:
        rows: list[Row] = []
        parts: list[tuple[str, Callable[[Path], list[Row]]]] = []
        if model is None:
            rows.append(
                Row(
                    SECTION,
                    "eres2net embed throughput, machinery cost, resume",
                    None,
                    note="skipped: no model folder (--extraction-model)",
                )
            )
        elif have_corpus:
            if model == RANDOM_BASE:
                model = str(
                    random_model_folder(
                        Path(stack.enter_context(tempfile.TemporaryDirectory()))
                        / "model",
                        {},
                        "ERes2Net-base, random weights",
                    )
                )
            files = realspk_paths(sizes.files)
            few = min(len(files), sizes.machinery_files)
            parts += [
                ("throughput", lambda d: throughput_rows(model, d, files, threads)),
                (
                    "machinery",
                    lambda d: machinery_rows(
                        model, d, realspk_paths(few), sizes, threads
                    ),
                ),
                ("resume", lambda d: resume_rows(model, d, files, threads)),
            ]
        if have_corpus:
            parts.append(("memory", lambda d: memory_rows(d, sizes, threads)))
        else:
            rows.append(
                Row(
                    SECTION,
                    "eres2net embed throughput, machinery cost, resume, memory",
                    None,
                    note=f"skipped: {REALSPK} absent (train_list.txt, dev_list.txt)",
                )
            )
        parts.append(("scoring", lambda d: scoring_rows(d, sizes, seed)))
        rows += run_parts(SECTION, [p for p in parts if only is None or p[0] in only])
    return rows
