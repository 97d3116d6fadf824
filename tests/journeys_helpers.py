"""Helpers of the journey tests: run the documented commands, read what they wrote.

Every command runs in a subprocess exactly as the README spells it
(``eres2net ...``, ``python recipes/VoxCeleb/ERes2Net/train_speaker_embeddings.py
hparams/... --key=value``), with ``HF_HUB_OFFLINE=1``: nothing may need the
network. Training commands can run under :data:`DRIVER`, which runs the same
script with the same arguments and records what training saw (the weights
before the first step, the items, shapes, dtype and loss of every batch).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from speechbrain_eres2net.training.checkpoints import latest_checkpoint
from speechbrain_eres2net.training.recipe import load_hparams

REPO = Path(__file__).resolve().parents[1]
HPARAMS = REPO / "hparams"
SCRIPT = REPO / "recipes" / "VoxCeleb" / "ERes2Net" / "train_speaker_embeddings.py"
CONVERT_M4A = REPO / "recipes" / "VoxCeleb" / "ERes2Net" / "convert_m4a.py"

# Runs a recipe script (argv[1:]) as `python <script> ...` would, recording
# into $JOURNEY_RECORD/rank<RANK>.jsonl one line per training batch, and the
# weights of the embedding model and classifier before the first step into
# rank<RANK>_first_step.pt. $JOURNEY_CRASH_AT=N dies hard (no clean-up, like
# SIGKILL) after the N-th batch.
DRIVER = r"""
import json, os, runpy, sys
import torch
from speechbrain_eres2net.training.brain import SpeakerBrain

folder = os.environ["JOURNEY_RECORD"]
rank = os.environ.get("RANK", "0")
crash_at = int(os.environ.get("JOURNEY_CRASH_AT", "0"))
seen = []


def unwrap(module):
    return getattr(module, "module", module)  # DDP wraps modules


def on_fit_batch_start(self, batch, should_step):
    if not seen:
        state = {
            name: {
                k: v.detach().cpu().clone()
                for k, v in unwrap(self.modules[name]).state_dict().items()
            }
            for name in ("embedding_model", "classifier")
        }
        torch.save(state, os.path.join(folder, f"rank{rank}_first_step.pt"))
    inputs, lens = batch.feats if hasattr(batch, "feats") else batch.sig
    seen.append(
        {
            "epoch": int(self.current_epoch),
            "step": int(self.step),
            "ids": list(batch.id),
            "padded": int(inputs.shape[1]),
            "lengths": [int(round(float(x) * inputs.shape[1])) for x in lens],
        }
    )
    return original_start(self, batch, should_step)


def on_fit_batch_end(self, batch, outputs, loss, should_step):
    seen[-1].update(dtype=str(outputs.dtype), loss=float(loss))
    with open(os.path.join(folder, f"rank{rank}.jsonl"), "a") as log:
        log.write(json.dumps(seen[-1]) + "\n")
    if crash_at and len(seen) == crash_at:
        os._exit(17)


original_start = SpeakerBrain.on_fit_batch_start
SpeakerBrain.on_fit_batch_start = on_fit_batch_start
SpeakerBrain.on_fit_batch_end = on_fit_batch_end
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Loads a model folder in a fresh interpreter as the model card says, with
# every socket connection refused, and saves the embedding of each file
# (one utterance at a time) to an .npy file.
FRESH_LOAD = r"""
import socket, sys
import numpy as np, soundfile, torch


def no_network(*args, **kwargs):
    raise RuntimeError("network access attempted")


socket.socket.connect = no_network
socket.create_connection = no_network
from speechbrain.inference.speaker import SpeakerRecognition

folder, out, *files = sys.argv[1:]
model = SpeakerRecognition.from_hparams(source=folder, savedir=None)
embeddings = []
for path in files:
    wav, rate = soundfile.read(path, dtype="float32")
    # (1, 1, emb) for ECAPA/ERes2Net, (1, emb) for ResNet: one vector each.
    embeddings.append(model.encode_batch(torch.from_numpy(wav)[None])[0].reshape(-1).numpy())
np.save(out, np.stack(embeddings))
print(type(model.mods.embedding_model).__name__)
"""

VERIFY_LINE = re.compile(
    r"^score (?P<score>-?\d+\.\d+) llr (?P<llr>-?\d+\.\d+) (?P<sign>>|<=) "
    r"(?P<threshold>-?\d+\.\d+) \(Bayes threshold, p_target (?P<p>[\d.]+)\) -> "
    r"(?P<verdict>same speaker|different speakers)$"
)


def environment(**extra: str) -> dict:
    """The environment of a user with no network (and nothing else special)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "ERES2NET_DEBUG": "", **extra}


def eres2net_command() -> str:
    """The ``eres2net`` console script of this interpreter's installation."""
    beside = Path(sys.executable).with_name("eres2net")
    found = str(beside) if beside.is_file() else shutil.which("eres2net")
    assert found, "the eres2net console script is not installed (pip install -e .)"
    return found


def run(
    command: list, cwd: Path, timeout: int = 1800, **env: str
) -> subprocess.CompletedProcess:
    """Runs a command line; returns it with its output (never raises on failure)."""
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def eres2net(*args, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """``eres2net <args>``."""
    return run([eres2net_command(), *args], cwd, **kwargs)


def recipe(
    hparams: str,
    cwd: Path,
    record: Optional[Path] = None,
    crash_at: int = 0,
    **options,
) -> subprocess.CompletedProcess:
    """``python recipes/.../train_speaker_embeddings.py hparams/<hparams> --k=v ...``.

    With ``record``, the same command runs under :data:`DRIVER`.
    """
    args = [SCRIPT, HPARAMS / hparams]
    for key, value in options.items():
        args.append(f"--{key}" if value is True else f"--{key}={value}")
    env = {}
    if record is not None:
        record.mkdir(parents=True, exist_ok=True)
        driver = record / "driver.py"
        driver.write_text(DRIVER)
        args = [driver, *args]
        env = {"JOURNEY_RECORD": str(record), "JOURNEY_CRASH_AT": str(crash_at)}
    return run([sys.executable, *args], cwd, **env)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Asserts a command succeeded, showing the end of its output if not."""
    assert done.returncode == 0, (
        f"{' '.join(done.args[:4])} ... exited {done.returncode}\n"
        + (done.stdout + done.stderr)[-5000:]
    )
    return done


def batches(record: Path, rank: int = 0) -> list[dict]:
    """What the driver recorded of each training batch of a rank."""
    path = record / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def first_step_state(record: Path, rank: int = 0) -> dict:
    """Weights of the embedding model and classifier before the first step."""
    return torch.load(record / f"rank{rank}_first_step.pt", weights_only=True)


def checkpoint_state(save_folder: Path, name: str) -> dict:
    """A module's state in the latest recipe checkpoint of a save folder."""
    path = latest_checkpoint(save_folder) / f"{name}.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_state(expected: dict, got: dict, what: str) -> None:
    """Same tensor names and bit-identical values."""
    assert expected.keys() == got.keys(), what
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"{what}: {different[:5]} differ"


def read_wav(path: Path) -> torch.Tensor:
    wav, _ = soundfile.read(path, dtype="float32")
    return torch.from_numpy(wav)


def checkpoint_embeddings(
    hparams_file: Path, output_folder: Path, overrides: dict, files: list[Path]
) -> torch.Tensor:
    """Embeddings of ``files`` from the recipe's own checkpoint, one at a time.

    The training YAML is loaded with the run's overrides, its checkpointer
    (pointed at the run's save folder) recovers the latest checkpoint into
    the YAML's modules, and each file goes through ``compute_features`` ->
    ``mean_var_norm`` -> ``embedding_model`` as in training (eval mode).
    """
    save = output_folder / "save"
    classes = checkpoint_state(save, "classifier")["weight"].shape[0]
    hp = load_hparams(
        str(hparams_file),
        {**overrides, "output_folder": str(output_folder), "out_n_neurons": classes},
    )
    assert hp["checkpointer"].recover_if_possible() is not None, save
    embeddings = []
    with torch.no_grad():
        for module in ("compute_features", "mean_var_norm", "embedding_model"):
            hp[module].eval()
        for path in files:
            ones = torch.ones(1)
            feats = hp["compute_features"](read_wav(path)[None])
            feats = hp["mean_var_norm"](feats, ones)
            embeddings.append(hp["embedding_model"](feats, ones)[0].reshape(-1))
    return torch.stack(embeddings)


def fresh_process_embeddings(
    folder: Path, files: list[Path], scratch: Path
) -> tuple[torch.Tensor, str]:
    """``SpeakerRecognition.from_hparams(source=folder)`` in a new process, offline.

    Returns the embeddings of ``files`` and the embedding model's class name.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / "load.py"
    script.write_text(FRESH_LOAD)
    out = scratch / "embeddings.npy"
    done = ok(run([sys.executable, script, folder, out, *files], scratch))
    assert "network access attempted" not in done.stderr
    return torch.from_numpy(np.load(out)), done.stdout.strip().splitlines()[-1]


def assert_reproduces(got: torch.Tensor, reference: torch.Tensor) -> None:
    """The folder's embeddings equal the checkpoint's up to float32 rounding.

    Both sides run the same modules with the same weights on the same
    float32 CPU kernels; only thread scheduling of the reductions can
    differ between processes, a few ulps of the largest value. 1e-5 of the
    largest magnitude is far below what a wrong tensor, a missing
    normaliser or a different front end changes (1e-2 and more).
    """
    assert got.shape == reference.shape and got.ndim == 2 and got.shape[1] > 1
    scale = float(reference.abs().max())
    error = float((got - reference).abs().max())
    assert error <= 1e-5 * scale, f"max difference {error:.3g} (scale {scale:.3g})"


def parse_verify(stdout: str) -> dict:
    """The score, LLR and decision that ``eres2net verify`` printed."""
    lines = stdout.strip().splitlines()
    assert lines, "eres2net verify printed nothing"
    match = VERIFY_LINE.match(lines[-1])
    assert match, f"unexpected verify output: {lines[-1]!r}"
    result = match.groupdict()
    for key in ("score", "llr", "threshold", "p"):
        result[key] = float(result[key])
    # The printed decision is the Bayes decision on the printed LLR.
    accept = result["verdict"] == "same speaker"
    assert accept == (result["sign"] == ">")
    assert accept == (result["llr"] > result["threshold"])
    assert result["threshold"] == 0.0 and result["p"] == 0.5  # p_target 0.5
    return result


def scores_file(path: Path) -> list[tuple[str, str, int, float]]:
    """``enrol test label score ...`` rows of a scores.txt."""
    rows = []
    for line in path.read_text().splitlines():
        enrol, test, label, score = line.split()[:4]
        rows.append((enrol, test, int(label), float(score)))
    return rows


def finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def train_log_losses(path: Path) -> list[float]:
    """Per-epoch training losses of a train_log.txt."""
    return [float(x) for x in re.findall(r"train loss: ([^,\s]+)", path.read_text())]
