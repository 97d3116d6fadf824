"""Embedding at scale: streamed output, resume after SIGKILL, torchrun ranks.

The journeys run ``eres2net embed`` as a user would (a subprocess, killed
with SIGKILL mid-run, or launched under ``torchrun``) and compare what ends
on disk with an uninterrupted single-process run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REALSPK, REPO  # noqa: E402
from model_builders import imported_folder  # noqa: E402

from speechbrain_eres2net.cli import main  # noqa: E402
from speechbrain_eres2net.dataio.embedding_store import (  # noqa: E402
    PartsFolder,
    job_digest,
    merge_parts,
)
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder  # noqa: E402


def corpus_list(tmp_path: Path, n: int) -> tuple[Path, list[str]]:
    """A list file of ``n`` real recordings plus one unreadable file."""
    files = sorted((REALSPK / "wav").glob("*/*/*.wav"))
    if len(files) < n:
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    chosen = [str(f) for f in files[:: len(files) // n][:n]]
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio\n")
    chosen.insert(n // 2, str(broken))
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(chosen) + "\n")
    return listing, chosen


def embed_command(folder: Path, listing: Path, out: Path) -> list[str]:
    return [
        "-m",
        "speechbrain_eres2net.cli",
        "embed",
        "--model",
        str(folder),
        str(listing),
        "--out",
        str(out),
        "--no-progress",  # else the default command: batching, fast path, speech
    ]


def environment(threads: int = 1) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    return env


def run(*argv: str) -> subprocess.CompletedProcess:
    """A command line run as a user would, output captured."""
    return subprocess.run(
        [sys.executable, *argv],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def journal_lines(out: Path) -> int:
    return sum(p.read_text().count("\n") for p in Path(f"{out}.parts").glob("*.scp"))


def assert_same_output(a: Path, b: Path, atol: float = 0.0) -> None:
    first, second = np.load(a), np.load(b)
    assert list(first.files) == list(second.files)  # same keys, same order
    for key in first.files:
        if atol:
            np.testing.assert_allclose(first[key], second[key], atol=atol)
        else:
            np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.slow
def test_a_killed_embed_resumes_to_the_uninterrupted_output(tmp_path):
    folder = imported_folder()
    listing, chosen = corpus_list(tmp_path, 40)
    straight = tmp_path / "straight.npz"
    done = run(*embed_command(folder, listing, straight))
    assert done.returncode == 1, done.stderr  # the broken file
    assert "1 of 41 file(s) could not be embedded" in done.stderr

    out = tmp_path / "killed.npz"
    process = subprocess.Popen(
        [sys.executable, *embed_command(folder, listing, out)],
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while journal_lines(out) < 15 and process.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = journal_lines(out)
    assert 15 <= finished < 40, "the run ended before it could be killed"
    assert not out.exists()  # nothing half-written where the output goes

    rerun = run(*embed_command(folder, listing, out))
    assert rerun.returncode == 1, rerun.stderr
    resumed = int(rerun.stderr.split("resumed: ")[1].split(" ")[0])
    assert resumed >= finished
    assert_same_output(straight, out)
    assert not Path(f"{out}.parts").exists()
    assert (
        Path(f"{out}.errors.txt").read_text()
        == Path(f"{straight}.errors.txt").read_text()
    )
    assert Path(f"{out}.errors.txt").read_text().startswith(f"{tmp_path}/broken.wav\t")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(tmp_path):
    folder = imported_folder()
    listing, _ = corpus_list(tmp_path, 12)
    single = tmp_path / "single.npz"
    one = run(*embed_command(folder, listing, single))
    assert one.returncode == 1, one.stderr
    out = tmp_path / "ranks.npz"
    two = run(
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        *embed_command(folder, listing, out),
    )
    # torchrun reports the first failing rank's code: rank 0's 1 (a bad file).
    assert two.returncode == 1, two.stderr
    assert "embedded 12 file(s) by 2 processes" in two.stderr
    assert_same_output(single, out, atol=1e-5)
    assert (
        Path(f"{out}.errors.txt").read_text()
        == Path(f"{single}.errors.txt").read_text()
    )
    assert not Path(f"{out}.parts").exists()


def test_bad_outputs_fail_before_any_work(tmp_path, capsys, monkeypatch):
    wav = tmp_path / "a b.wav"
    wav.write_bytes(b"")

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(SpeakerEmbedder, "from_folder", no_model)
    cases = {
        tmp_path / "missing" / "e.npz": "folder",
        tmp_path: "is a folder",
        tmp_path / "e.ark": "Kaldi keys cannot contain whitespace",
    }
    for out, reason in cases.items():
        code = main(["embed", "--model", str(tmp_path), str(wav), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 1 and reason in err and err.count("\n") == 1, err
        assert str(out) in err


def test_a_file_given_twice_fails_before_any_work(tmp_path, capsys, monkeypatch):
    """Keys are the inputs' paths: a file listed twice (here in a list file
    and again by name) would give the output a duplicate key."""
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    listing = tmp_path / "files.txt"
    listing.write_text(f"{wav}\n{tmp_path / 'b.wav'}\n")

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(SpeakerEmbedder, "from_folder", no_model)
    out = tmp_path / "e.npz"
    code = main(
        ["embed", "--model", str(tmp_path), str(listing), str(wav), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"{wav} is given twice (input files 1 and 3)" in err
    assert not out.exists() and not Path(f"{out}.parts").exists()


def test_parts_of_another_job_are_refused(tmp_path):
    parts = PartsFolder(tmp_path / "e.npz.parts")
    parts.prepare(job_digest(["a", "b"]), 2, "npz")
    parts.check(job_digest(["a", "b"]), "npz")
    with pytest.raises(ValueError, match="parts of another embed job"):
        parts.check(job_digest(["a", "c"]), "npz")


def test_a_half_written_journal_line_is_done_again(tmp_path):
    parts = PartsFolder(tmp_path / "e.npz.parts")
    parts.prepare(job_digest(["a", "b", "c"]), 3, "npz")
    writer = parts.writer(rank=0)
    writer.write({0: np.ones(4, np.float32)}, {})
    writer.write({}, {2: "file not found"})
    # A process killed while writing: an ark record and part of its line.
    writer.write({1: np.full(4, 2.0, np.float32)}, {})
    text = writer.scp.read_text()
    writer.scp.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 1] + "1 ")
    with writer.errors.open("a") as f:
        f.write("1\tcut sho")
    finished = parts.finished(3)
    assert finished.done().tolist() == [True, False, True]
    # The next run writes a new part; the merge takes both.
    parts.writer(rank=0).write({1: np.full(4, 3.0, np.float32)}, {})
    written, errors = merge_parts(
        parts, ["a", "b", "c"], tmp_path / "e.npz", "npz", tmp_path / "e.err"
    )
    stored = np.load(written[0])
    assert stored.files == ["a", "b"]
    assert stored["b"].tolist() == [3.0] * 4
    assert errors == {"c": "file not found"}
    assert not parts.folder.exists()


def test_merge_refuses_a_job_with_missing_files(tmp_path):
    parts = PartsFolder(tmp_path / "e.npz.parts")
    parts.prepare(job_digest(["a", "b"]), 2, "npz")
    parts.writer(rank=0).write({0: np.ones(2, np.float32)}, {})
    with pytest.raises(RuntimeError, match=r"count check failed: 1 of 2 .*\(e.g. b\)"):
        merge_parts(parts, ["a", "b"], tmp_path / "e.npz", "npz", tmp_path / "e.err")
    assert parts.folder.exists() and not (tmp_path / "e.npz").exists()


def peak_bytes_of_a_job(folder: Path, n: int, fmt: str) -> int:
    """tracemalloc peak of journaling and merging ``n`` 192-d embeddings."""
    keys = [f"spk{i % 100:03d}/utt{i:06d}.wav" for i in range(n)]
    vector = np.ones(192, np.float32)
    parts = PartsFolder(folder / f"{n}.parts")
    parts.prepare(job_digest(keys), n, fmt)
    tracemalloc.start()
    writer = parts.writer(rank=0)
    for start in range(0, n, 16):
        writer.write({i: vector for i in range(start, min(n, start + 16))}, {})
    merge_parts(parts, keys, folder / f"{n}.out", fmt, folder / f"{n}.err")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_writer_memory_does_not_grow_with_the_file_count(tmp_path):
    small = peak_bytes_of_a_job(tmp_path, 1_000, "kaldi")
    large = peak_bytes_of_a_job(tmp_path, 20_000, "kaldi")
    # What does grow: the merge's per-file index (12 bytes a file), far
    # below one embedding per file (768 bytes).
    assert large - small < 100 * (20_000 - 1_000), (small, large)
    assert large < small + 2 * 2**20, (small, large)


def test_npz_memory_grows_only_by_its_zip_index(tmp_path):
    small = peak_bytes_of_a_job(tmp_path, 1_000, "npz")
    large = peak_bytes_of_a_job(tmp_path, 20_000, "npz")
    # The zip central directory (one entry a member, written last) is what
    # an .npz costs: under 600 bytes a file, less than the vectors (768).
    assert large - small < 600 * (20_000 - 1_000), (small, large)


def test_openvino_forgets_kernels_after_the_lengths_kept(monkeypatch):
    """OpenVINO keeps kernels for every shape it has run, so the fast path
    compiles afresh after ``openvino_lengths_kept`` new shapes: a corpus of
    many lengths stays in bounded memory, and the embeddings do not change."""
    pytest.importorskip("openvino")
    import torch

    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.inference import openvino_engine
    from speechbrain_eres2net.inference.onnx_engine import onnx_graph

    monkeypatch.setattr(openvino_engine, "default", {"openvino_lengths_kept": 4}.get)
    torch.manual_seed(0)
    model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    graph = onnx_graph(model, torch.randn(1, 50, 80), lengths=torch.ones(1))
    engine = openvino_engine.OpenVINOERes2Net(model, graph, threads=1)
    feats = torch.randn(1, 120, 80)
    with torch.no_grad():
        for length in [60, 61, 62, 63, 60, 64, 65, 66, 67, 68, 120]:
            out = engine(feats[:, :length])  # unpadded: each at its own shape
            assert torch.allclose(out, model(feats[:, :length]), atol=1e-4)
    # 10 shapes with 4 kept: compiled afresh at the 5th and the 9th new one.
    assert engine.recompiles == 2 and len(engine.shapes) == 2


def test_graph_engines_run_a_corpus_of_any_lengths_at_few_shapes():
    """Utterances run zero-padded to a multiple of ``graph_frames_multiple``
    frames with the padding masked: 40 lengths run at 2 shapes (OpenVINO sets
    kernels up twice, not 40 times), and each embedding is that of its
    unpadded features."""
    pytest.importorskip("openvino")
    import torch

    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.inference import openvino_engine
    from speechbrain_eres2net.inference.onnx_engine import onnx_graph
    from speechbrain_eres2net.settings import default

    multiple = default("graph_frames_multiple")
    torch.manual_seed(0)
    model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    graph = onnx_graph(model, torch.randn(1, 50, 80), lengths=torch.ones(1))
    engine = openvino_engine.OpenVINOERes2Net(model, graph, threads=1)
    lengths = range(3 * multiple - 29, 3 * multiple + 11)
    feats = torch.randn(1, max(lengths), 80)
    with torch.no_grad():
        for n in lengths:
            out = engine(feats[:, :n], torch.ones(1))
            assert torch.allclose(out, model(feats[:, :n]), atol=1e-4), n
    assert engine.shapes == {(1, 3 * multiple, 80), (1, 4 * multiple, 80)}


def test_graph_engines_give_an_utterance_the_same_bits_in_any_batch():
    """Resume equals an uninterrupted run only if an utterance's embedding does
    not depend on the files it was batched with, equal lengths included."""
    pytest.importorskip("onnxruntime")
    import torch

    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.inference.onnx_engine import OrtERes2Net, onnx_graph

    torch.manual_seed(0)
    model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    graph = onnx_graph(model, torch.randn(1, 50, 80), lengths=torch.ones(1))
    engine = OrtERes2Net(model, graph, threads=1)
    feats = torch.randn(3, 70, 80)
    alone = engine(feats[:1], torch.ones(1))
    for batch in (feats, feats[:2]):
        together = engine(batch, torch.ones(batch.shape[0]))
        assert torch.equal(together[:1], alone)


def test_a_batch_never_changes_an_utterance_s_normalised_features():
    """SpeechBrain's padding mask counts one padded frame into the sentence
    statistics for some padded lengths (float32 relative lengths, 1e-6
    margin); features are normalised one utterance at a time, so batching
    does not change an embedding (a resumed embed groups files differently)."""
    import torch

    folder = imported_folder()
    embedder = SpeakerEmbedder.from_folder(folder, fast=False, vad="off")
    torch.manual_seed(0)
    short = torch.randn(39_520) * 0.1  # 245 frames, as a realspk file that differed
    with torch.no_grad():
        alone = embedder.embed_batch([short])[0]
        for frames in (284, 318, 339, 346, 360, 370, 441):
            long = torch.randn(short.shape[0] + 160 * (frames - 245)) * 0.1
            together = embedder.embed_batch([long, short])[1]
            assert torch.allclose(alone, together, atol=1e-6), frames


def test_a_batch_never_changes_the_embedding_of_a_lobe_that_sees_padding():
    """SpeechBrain's ECAPA-TDNN convolutions see the padding (an embedding
    moved by up to 0.47 in a resumed embed); the embedder runs a lobe that is
    not ``padding_exact`` one utterance at a time, so its batches, and with
    them a resumed or sharded embed, never change an embedding."""
    import torch
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.processing.features import InputNormalization

    from speechbrain_eres2net import KaldiFbank

    torch.manual_seed(0)
    lobe = ECAPA_TDNN(80, lin_neurons=16, channels=[32, 32, 32, 32, 96])
    assert not getattr(lobe, "padding_exact", False)
    embedder = SpeakerEmbedder(
        KaldiFbank(mean_norm=False),
        InputNormalization(norm_type="sentence", std_norm=False),
        lobe,
        vad="off",
    )
    short, long = torch.randn(16_000) * 0.1, torch.randn(48_000) * 0.1
    with torch.no_grad():
        alone = embedder.embed_batch([short])[0]
        together = embedder.embed_batch([long, short])
    assert together.shape == (2, 16)
    assert torch.allclose(alone, together[1], atol=1e-6)
