"""Shared fixtures for the speechbrain-eres2net test suite."""

from __future__ import annotations

import functools
import os
import socket
import tempfile
from pathlib import Path

import pytest
import soundfile
import torch

REPO = Path(__file__).resolve().parents[1]
# Epochs of the realspk quickstart fixture: enough for the EER to fall well
# below the untrained model's and for identification to work (asserted), few
# enough for the suite's budget (20 epochs took 11 of its minutes).
REALSPK_EPOCHS = 10
REALSPK = Path(
    os.environ.get("ERES2NET_REALSPK", REPO.parent / "shared" / "data" / "realspk")
)
# Engine graphs the tests build are cached in a folder of this run, not in the
# user's cache (subprocesses inherit it).
os.environ.setdefault("ERES2NET_CACHE", tempfile.mkdtemp(prefix="eres2net-cache-"))


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Gives every BatchNorm non-trivial statistics and affine parameters.

    With PyTorch's defaults (mean 0, var 1, weight 1, bias 0) a wrong
    running-stat or affine mapping would go unnoticed in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    module.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


@functools.cache
def net_speech(path: Path) -> float:
    """Seconds of speech Silero VAD finds in a file."""
    from speechbrain_eres2net.dataio.vad import SpeechDetector

    audio, rate = soundfile.read(path, dtype="float32")
    return SpeechDetector()(torch.from_numpy(audio), rate).seconds


def has_speech(trial: str, wav: Path) -> bool:
    """Both files of a trial line hold >= 1.5 s of speech.

    Trial lists of tests must keep every trial: a side under the 1 s minimum
    would be refused and its trial left out.
    """
    return all(net_speech(wav / p) >= 1.5 for p in trial.split()[1:])


@pytest.fixture(scope="session")
def realspk_quickstart(tmp_path_factory, realspk) -> dict:
    """The quickstart trained on realspk and exported with its calibration.

    The one really trained model of the suite (``REALSPK_EPOCHS`` epochs),
    shared by the tests that need a model that tells speakers apart.
    Returns the quickstart's summary plus ``out`` (its folder).
    """
    from speechbrain_eres2net.cli.quickstart import parse_args, run

    out = tmp_path_factory.mktemp("realspk") / "realspk"
    args = ["--data_folder", str(realspk), "--output_folder", str(out)]
    summary = run(parse_args([*args, "--epochs", str(REALSPK_EPOCHS)]))
    return {**summary, "out": out}


@pytest.fixture
def run_cli(capsys):
    """Runs ``eres2net ARGS`` in this process: ``run_cli(args)`` returns
    (exit code, stdout, stderr); arguments may be paths."""
    from speechbrain_eres2net.cli import main

    def run(args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Restores torch's thread count after each test: a benchmark run in
    process sets it (``--quick``: 1) and every later test ran on one core."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def randomize_bn():
    """The :func:`randomize_batchnorm` function."""
    return randomize_batchnorm


@pytest.fixture(scope="session")
def realspk() -> Path:
    """Path of the real multi-speaker corpus; skips when it is absent."""
    if not (REALSPK / "dev_trials.txt").is_file():
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    return REALSPK


def pytest_collection_modifyitems(config, items):
    """Skips ``@pytest.mark.cuda`` tests, saying why, where there is no GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA GPU: torch.cuda.is_available() is False here"
    )
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
