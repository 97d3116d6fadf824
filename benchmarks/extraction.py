"""Embedding at scale: ``eres2net embed`` throughput, memory, resume; scoring size.

Benchmark ``extraction`` (``--extraction-model`` FOLDER or ``random-base``,
ERes2Net-base with random weights built for the run), in parts: (1) files/s of
the whole command over realspk train + dev (one process, torchrun x 2,
``--num-workers 2``, int8) vs the loop a SpeechBrain user writes
(``SpeakerRecognition.from_hparams`` then ``encode_batch`` per file, the loop
alone timed, before and after ours), and the cost of the streaming and resume
machinery (:func:`extract_embeddings` vs consuming ``iter_files``); (2) peak RSS
over 20,000 vs 1,000 files (realspk tiled with symlinks, a tiny random model);
(3) a run SIGKILLed halfway and rerun vs a straight run, whose outputs must be
equal; (4) AS-norm scoring at VoxCeleb1-H size (simulated, informative).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .driver import render, run_parts, skipped, table
from .measure import (
    REALSPK,
    REPO,
    child_env,
    cpu_capability,
    has_realspk,
    interleaved_times,
    realspk_files,
    run_child,
    run_isolated,
    set_threads,
)

SECTION = "extraction"
# Real speech calibrating the opt-in int8 row (the first files of the run).
INT8_CALIBRATION_FILES = 32
RESUME_ATOL = 1e-5
# Seconds between two looks at the journal of the run that is killed: a
# batch of the CPU default (20 s of audio) takes longer than this.
POLL_S = 0.02
# Sleep before each timed call: thread pools spin after one (interleaved_times).
PAUSE_S = 0.2
EMBEDDING_SIZE = 192
# The tiny random model of the memory rows: the writer and the merge are
# measured, not the network.
TINY_MODEL = {"m_channels": 8, "num_blocks": [1, 1, 1, 1]}
RANDOM_BASE = "random-base"
PARTS = ("throughput", "machinery", "resume", "memory", "scoring")
# name: (full run, --quick); files None: all 1,040.
SIZES = {
    "files": (None, 40),
    "machinery_files": (240, 40),
    "machinery_repeats": (2, 1),
    "tiled": ((1_000, 20_000), (200, 400)),
    "keys": (145_000, 2_000),
    "trials": (550_000, 5_000),
    "cohort": (6_000, 200),
    "top_k": (300, 100),
}
THROUGHPUT_ROWS = table(
    """
    eres2net embed, realspk {n} files, {what} (files/s)
        rate / reference_rate, files/s, >= target
        {n} files in {seconds:.1f} s; reference: SpeechBrain
        {class}.from_hparams(source=folder) (offline), per file read_audio +
        encode_batch under no_grad,
        {loop_threads}thr, loop alone timed (model load excluded) before and after
        our commands: {before:.1f} s and {after:.1f} s, mean used; ours: the whole
        command, wall clock (interpreter start, imports, model load, merge
        included); --vad off; cpu capability {capability}{extra}
    """
)
STARTUP_ROWS = table(
    """
    eres2net embed start-up: the same command on 1 file, {threads}thr
        seconds, s
        interpreter start, imports, model load (fast-path conversion), one file,
        merge; part of every command timed above
    """
)
MACHINERY_ROWS = table(
    """
    streaming + resume machinery cost, realspk {files} files, {threads}thr
        extract_embeddings / iter_files, s, <= 1.05
        ours: extract_embeddings to an .npz (journal parts, merge, count check);
        reference: SpeakerEmbedder.iter_files consumed without writing; same
        embedder ({engine}), same process, --vad off; median of {repeats}
        interleaved rounds after one untimed pass; cpu capability {capability}
    """
)
MEMORY_ROWS = table(
    """
    eres2net embed peak RSS, {large:,} vs {small:,} files (realspk tiled)
        large_rss / small_rss, MiB, <= 1.1
        fresh process each, eres2net embed in-process, tiny random model
        (m_channels 8, blocks [1, 1, 1, 1]), --vad off, .npz out, {threads}thr;
        work itself (peak - base) {large_work:.0f} vs {small_work:.0f} MiB;
        {large_rate:.0f} vs {small_rate:.0f} files/s
    """
)
RESUME_ROWS = table(
    """
    eres2net embed resumed after SIGKILL at 50%, realspk {n} files, {rerun_what}
        rerun / total, s, <= 0.6
        {kill}; whole commands, wall clock (start and model load in both); --vad off
    resumed output vs straight output: max |difference|
        diff, max abs, <= 1e-05 absolute
        {in_place} of {keys} keys at the same position{differ}; batches differ
        between the runs (other files left to group)
    resumed output vs straight output: keys in the same order
        same_order, % keys, >= 100 absolute
        {in_place} of {keys} keys at the same position
    """
)
SCORING_ROWS = table(
    """
    {what}: time
        seconds, s
        random 192-d embeddings, random pairs and labels (EER {eer:.1%}, AS-norm
        {asnorm_eer:.1%}: chance, as it must be); plots off; scores.txt written;
        1 thread
    {what}: peak RSS
        peak_rss_mb, MiB
        fresh process; the embeddings and the trial list took {data:.0f} MiB,
        evaluate_trials added {work:.0f} MiB on top
    """
)


def write_list(path: Path, files: Sequence[Path]) -> Path:
    """A list file of absolute paths, one a line (``eres2net embed`` input).
    Links stay links: a tiled corpus keeps one key per link."""
    path.write_text("".join(f"{Path(f).absolute()}\n" for f in files))
    return path


def embed_args(model: str, listing: Path, out: Path, *extra: str) -> list[str]:
    """The arguments of ``eres2net embed`` (after the program name)."""
    args = ["embed", "--model", str(model), str(listing), "--out", str(out)]
    return args + ["--vad", "off", "--no-progress", *extra]


def embed_argv(model: str, listing: Path, out: Path, *extra: str) -> list[str]:
    """``eres2net embed`` as this interpreter runs it."""
    cli = [sys.executable, "-m", "speechbrain_eres2net.cli"]
    return cli + embed_args(model, listing, out, *extra)


def torchrun_argv(model: str, listing: Path, out: Path, processes: int) -> list[str]:
    """The same command under ``torchrun --nproc_per_node=processes``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))  # a free port for torchrun's rendezvous
        port = int(s.getsockname()[1])
    run = [sys.executable, "-m", "torch.distributed.run"]
    run += [f"--nproc_per_node={processes}", f"--master_port={port}"]
    return run + ["-m", "speechbrain_eres2net.cli", *embed_args(model, listing, out)]


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
        diffs = [float(np.max(np.abs(a[k] - b[k]))) for k in common]
    return in_place, len(keys_a), max(diffs, default=float("nan"))


def min_cosine_npz(first: Path, second: Path) -> float:
    """The worst cosine between the embeddings two ``.npz`` files hold for
    the keys of ``first`` (every one must be in ``second``).

    Example
    -------
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


def random_model_folder(
    out: Path, config: dict, title: str, seed: int = 0, **fbank: object
) -> Path:
    """A model folder of a random ERes2Net of ``config`` (Kaldi fbank front
    end, official settings unless ``fbank`` gives others), written and
    checked by the package's own :func:`write_model_folder`: speed and
    memory do not depend on the weights."""
    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.export.card import ModelCard
    from speechbrain_eres2net.export.import_3dspeaker import kaldi_front_end_nodes
    from speechbrain_eres2net.export.model_folder import write_model_folder
    from speechbrain_eres2net.export.yaml_nodes import new_node

    config = {"feat_dim": 80, "embedding_size": EMBEDDING_SIZE, **config}
    torch.manual_seed(seed)
    model = ERes2Net(**config).eval()
    nodes = {
        **kaldi_front_end_nodes(**fbank),
        "embedding_model": new_node("speechbrain_eres2net.ERes2Net", **config),
    }
    card = ModelCard(
        title=f"{title} (benchmark only)",
        training_data="none: random weights",
        notes=["For measuring speed and memory; its embeddings mean nothing."],
    )
    return write_model_folder(out, nodes, {"embedding_model": model}, card)


def speechbrain_loop(model: str, listing: str, savedir: str, out: str) -> dict:
    """Worker: a SpeechBrain user's loop over the files of ``listing``, timed
    as a whole (model load excluded); the embeddings go to ``out`` (``.npz``
    keyed by path) so that the caller can check both sides computed the same."""
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
    np.savez(out, **{path: e.numpy() for path, e in zip(files, embeddings)})
    return {
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "class": type(recognizer).__name__,
    }


def machinery_cost(model: str, listing: str, folder: str, repeats: int) -> dict:
    """Worker: :func:`extract_embeddings` to an ``.npz`` vs the bare
    :meth:`SpeakerEmbedder.iter_files` loop, one embedder, interleaved, after
    one untimed pass (neither side pays for the first sight of a batch shape)."""
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
    functions = {"iter_files": consume, "extract_embeddings": extract}
    times = interleaved_times(functions, repeats, warmup=0, pause=PAUSE_S)
    engine = embedder.embedding_model
    return {
        **times,
        "files": len(files),
        "engine": f"{getattr(engine, 'engine', 'eager')} "
        f"{getattr(engine, 'precision', 'fp32')}",
        "threads": torch.get_num_threads(),
    }


def embed_in_process(args: list[str]) -> dict:
    """Worker: ``eres2net embed`` in this process (its peak RSS is ours), timed."""
    from speechbrain_eres2net.cli.main import main

    start = time.perf_counter()
    if main(args) != 0:
        raise RuntimeError(f"eres2net {' '.join(args)} failed")
    return {"seconds": time.perf_counter() - start}


def score_simulated(
    keys: int, trials: int, cohort: int, top_k: int, folder: str, seed: int
) -> dict:
    """Worker: AS-norm scoring of random embeddings, timed. The data are made
    first (untimed); ``rss_before_mb`` is the peak RSS then, so that the caller
    can tell them from what :func:`evaluate_trials` adds."""
    from speechbrain_eres2net.evaluation.pipeline import evaluate_trials

    from .measure import peak_rss_mb

    rng = np.random.default_rng(seed)
    # Shaped like VoxCeleb's idNNNNN/video/NNNNN.wav: their length is part of
    # what the scorer holds in memory.
    names = [
        f"id{10000 + k // 30}/{k // 6 % 5:011d}/{k % 6 + 1:05d}.wav"
        for k in range(keys)
    ]
    matrix = rng.standard_normal((keys, EMBEDDING_SIZE), dtype=np.float32)
    # One array per key, as np.load of an .npz gives them.
    embeddings = {name: row.copy() for name, row in zip(names, matrix)}
    del matrix
    enrol, test = rng.integers(0, keys, trials), rng.integers(0, keys, trials)
    test = np.where(test == enrol, (test + 1) % keys, test)
    labels = rng.integers(0, 2, trials)
    trials_file = Path(folder) / "trials.txt"
    with open(trials_file, "w") as f:
        for label, e, t in zip(labels.tolist(), enrol.tolist(), test.tolist()):
            f.write(f"{label} {names[e]} {names[t]}\n")
    bank = rng.standard_normal((cohort, EMBEDDING_SIZE), dtype=np.float32)
    before = peak_rss_mb()
    start = time.perf_counter()
    scores = Path(folder) / "scores"
    results = evaluate_trials(
        embeddings, trials_file, scores, cohort=bank, top_k=top_k, plots=False
    )
    return {
        "seconds": time.perf_counter() - start,
        "rss_before_mb": before,
        "eer": results["eer"],
        "asnorm_eer": results["asnorm"]["eer"],
    }


def throughput_rows(model: str, folder: Path, files: list[Path], threads: int):
    """Part 1: files/s of the command four ways vs SpeechBrain's loop, run
    before and after them (a shared machine's speed drifts over minutes)."""
    listing = write_list(folder / "files.txt", files)
    loop = {"model": str(model), "listing": str(listing)}
    loop.update(savedir=str(folder / "savedir"), out=str(folder / "speechbrain.npz"))
    before = run_isolated("benchmarks.extraction:speechbrain_loop", loop, threads)
    calibration = write_list(folder / "int8.txt", files[:INT8_CALIBRATION_FILES])
    one = f"1 process x {threads} thr"
    runs = {  # what -> extra arguments of the command (None: under torchrun)
        one: [],
        "torchrun --nproc_per_node=2, 1 thr each": None,
        f"{one}, --num-workers 2": ["--num-workers", "2"],
        f"{one}, --precision int8 (opt-in)": ["--precision", "int8"]
        + ["--int8-calibration", str(calibration)],
    }
    seconds = {}
    for k, (what, extra) in enumerate(runs.items()):
        out = folder / f"run{k}.npz"
        argv = embed_argv(model, listing, out, *extra or ())
        if extra is None:
            argv = torchrun_argv(model, listing, out, 2)
        seconds[what], _ = run_child(
            argv, child_env(threads if extra is not None else 1)
        )
        if npz_keys(out) != [str(f) for f in files]:
            raise RuntimeError(f"{what}: {out} does not hold the inputs' keys")
    after = run_isolated("benchmarks.extraction:speechbrain_loop", loop, threads)
    common = {"n": len(files), "class": before["class"], "capability": cpu_capability()}
    common.update(before=before["seconds"], after=after["seconds"])
    common.update(loop_threads=before["threads"])
    common["reference_rate"] = 2 * len(files) / (before["seconds"] + after["seconds"])
    rows = []
    for k, what in enumerate(runs):
        extra = ""
        if k in (0, 3):  # the target's row, and int8's (which rounds)
            cosine = min_cosine_npz(folder / f"run{k}.npz", Path(loop["out"]))
            extra = f"; min cosine to SpeechBrain's embeddings {cosine:.6f}"
        if k == 3:
            extra += f"; calibrated on the first {INT8_CALIBRATION_FILES} files "
            extra += "(calibration inside the timed command)"
        values = {**common, "what": what, "seconds": seconds[what], "extra": extra}
        values.update(rate=len(files) / seconds[what], target=2.0 if k == 0 else None)
        rows += render(SECTION, THROUGHPUT_ROWS, values)
    # The fixed cost inside each figure above: with a small model or few
    # files it, not the embedding, sets the files/s.
    argv = embed_argv(
        model, write_list(folder / "one.txt", files[:1]), folder / "1.npz"
    )
    seconds, _ = run_child(argv, child_env(threads))
    return rows + render(
        SECTION, STARTUP_ROWS, {"seconds": seconds, "threads": threads}
    )


def machinery_rows(model: str, folder: Path, files: list[Path], repeats: int, threads):
    """Part 1, last row: the cost of streaming to disk and of the journal."""
    listing = write_list(folder / "files.txt", files)
    kwargs = {"model": model, "listing": str(listing), "folder": str(folder)}
    kwargs["repeats"] = repeats
    result = run_isolated("benchmarks.extraction:machinery_cost", kwargs, threads)
    values = {**result, "repeats": repeats, "capability": cpu_capability()}
    return render(SECTION, MACHINERY_ROWS, values)


def memory_rows(folder: Path, tiled: tuple[int, int], threads: int) -> list:
    """Part 2: peak RSS of the command, large tiled corpus vs small one."""
    title = "Tiny random ERes2Net"
    model = random_model_folder(folder / "tiny_model", TINY_MODEL, title)
    small, large = tiled
    sources = [REALSPK / "wav" / rel for rel in realspk_files()]
    (folder / "tiled").mkdir()
    links = [folder / "tiled" / f"f{k:06d}.wav" for k in range(large)]
    for k, link in enumerate(links):  # a corpus of any size, no audio copied
        os.symlink(sources[k % len(sources)], link)
    values = {"small": small, "large": large, "threads": threads}
    for count, size in ((small, "small"), (large, "large")):
        listing = write_list(folder / f"files_{count}.txt", links[:count])
        out = folder / f"out_{count}.npz"
        kwargs = {"args": embed_args(str(model), listing, out)}
        result = run_isolated("benchmarks.extraction:embed_in_process", kwargs, threads)
        if len(npz_keys(out)) != count:
            raise RuntimeError(f"{count} files embedded into {len(npz_keys(out))} keys")
        values[f"{size}_rss"] = result["peak_rss_mb"]
        values[f"{size}_work"] = result["peak_rss_mb"] - result["base_rss_mb"]
        values[f"{size}_rate"] = count / result["seconds"]
    return render(SECTION, MEMORY_ROWS, values)


def journal_lines(parts: Path) -> int:
    """Complete lines of every ``*.scp`` of an ``<out>.parts`` journal (one a
    finished embedding)."""
    total = 0
    for scp in parts.glob("*.scp"):
        with contextlib.suppress(OSError):  # the merge may remove it meanwhile
            total += scp.read_bytes().count(b"\n")
    return total


def run_and_kill(argv, env, parts: Path, at: int, log: Path) -> Optional[int]:
    """Starts a command, SIGKILLs it once its journal holds ``at`` embeddings;
    returns the embeddings in the journal then (None: it ended first)."""
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
    env = child_env(threads)
    straight, resumed = folder / "straight.npz", folder / "resumed.npz"
    total, _ = run_child(embed_argv(model, listing, straight), env)
    argv = embed_argv(model, listing, resumed)
    at = int(np.ceil(0.5 * len(files)))
    done = run_and_kill(argv, env, Path(f"{resumed}.parts"), at, folder / "killed.txt")
    rerun, process = run_child(argv, env)
    found = re.search(r"resumed: (\d+) of (\d+)", process.stderr)
    if done is None:
        kill = "the run ended before it could be killed (the rerun redid it all)"
    else:
        kill = f"killed with {done} of {len(files)} files in the journal; the rerun "
        kill += f"found {found.group(1)} done" if found else "reported no resume"
    in_place, keys, diff = compare_npz(straight, resumed)
    resumed_keys = len(npz_keys(resumed))
    values = {"n": len(files), "rerun": rerun, "total": total, "kill": kill}
    values.update(diff=diff, in_place=in_place, keys=keys)
    values["rerun_what"] = f"{threads}thr: rerun vs straight run"
    values["differ"] = "" if in_place == keys == resumed_keys else " (KEYS DIFFER)"
    values["same_order"] = 100.0 * in_place / max(keys, resumed_keys)
    return render(SECTION, RESUME_ROWS, values)


def scoring_rows(folder: Path, sizes: dict, seed: int) -> list:
    """Part 4: AS-norm scoring of a VoxCeleb1-H-sized list, simulated."""
    kwargs = {k: sizes[k] for k in ("keys", "trials", "cohort", "top_k")}
    kwargs.update(folder=str(folder), seed=seed)
    result = run_isolated("benchmarks.extraction:score_simulated", kwargs, 1)
    what = (
        f"evaluate_trials, AS-norm, {sizes['keys']:,} keys x {sizes['trials']:,} "
        f"trials, cohort {sizes['cohort']:,} top {sizes['top_k']}"
    )
    values = {**result, "what": what}
    values["data"] = result["rss_before_mb"] - result["base_rss_mb"]
    values["work"] = result["peak_rss_mb"] - result["rss_before_mb"]
    return render(SECTION, SCORING_ROWS, values)


def bench_extraction(args) -> list:
    """Every row; a part that fails leaves a ``section failed`` row. Options:
    ``--extraction-model`` (a folder or ``random-base``; the throughput and
    resume rows are skipped without one), ``--extraction-files`` (default all
    1,040, evenly spread), ``--extraction-parts`` (of :data:`PARTS`),
    ``--quick``, ``--threads`` (the last count)."""
    only = args.extraction_parts.split(",") if args.extraction_parts else PARTS
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        raise ValueError(f"--extraction-parts: unknown {unknown}; expected of {PARTS}")
    sizes = {key: pair[args.quick] for key, pair in SIZES.items()}
    if args.extraction_files is not None:
        sizes["files"] = args.extraction_files
    model, threads, seed = args.extraction_model, args.thread_counts[-1], 1234
    set_threads(threads)
    corpus = has_realspk("train_list.txt", "dev_list.txt")
    rows, parts = [], []
    with contextlib.ExitStack() as stack:
        if model is None:
            name = "eres2net embed throughput, machinery cost, resume"
            rows = skipped(SECTION, name, "no model folder (--extraction-model)")
        elif corpus:
            if model == RANDOM_BASE:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                title = "ERes2Net-base, random weights"
                model = str(random_model_folder(work / "model", {}, title))
            files = [REALSPK / "wav" / r for r in realspk_files(sizes["files"])]
            few = min(len(files), sizes["machinery_files"])
            few = [REALSPK / "wav" / r for r in realspk_files(few)]
            repeats = sizes["machinery_repeats"]
            parts += [
                ("throughput", lambda d: throughput_rows(model, d, files, threads)),
                (
                    "machinery",
                    lambda d: machinery_rows(model, d, few, repeats, threads),
                ),
                ("resume", lambda d: resume_rows(model, d, files, threads)),
            ]
        if corpus:
            parts.append(("memory", lambda d: memory_rows(d, sizes["tiled"], threads)))
        else:
            name = "eres2net embed throughput, machinery cost, resume, memory"
            why = f"{REALSPK} absent (train_list.txt, dev_list.txt)"
            rows += skipped(SECTION, name, why)
        parts.append(("scoring", lambda d: scoring_rows(d, sizes, seed)))
        rows += run_parts(SECTION, [p for p in parts if p[0] in only])
    return rows
