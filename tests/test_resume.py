"""A training run killed mid-epoch resumes and ends where an uninterrupted one does.

Three runs of the recipe script on a tiny synthetic corpus: one uninterrupted;
one hard-killed (``os._exit``, no clean-up, like SIGKILL) in the middle of
epoch 1, after an intra-epoch checkpoint; and the same command started again,
which must pick up that checkpoint and finish with identical weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_recipe import REPO, tiny_corpus, tiny_run_args  # noqa: E402

# Runs the recipe script, dying hard at the CRASH_AT-th training batch.
CRASHING_DRIVER = """
import os, runpy, sys
from speechbrain_eres2net.training.brain import SpeakerBrain

crash_at = int(os.environ["CRASH_AT"])
seen = 0

def on_fit_batch_end(self, batch, outputs, loss, should_step):
    global seen
    seen += 1
    if seen == crash_at:
        os._exit(17)

SpeakerBrain.on_fit_batch_end = on_fit_batch_end
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run(args: list[str], **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def final_weights(output: Path) -> dict[str, torch.Tensor]:
    ckpts = sorted((output / "save").glob("CKPT+*"))
    assert len(ckpts) == 1, ckpts
    state = {}
    for name in ("embedding_model", "classifier"):
        loaded = torch.load(ckpts[0] / f"{name}.ckpt")
        state.update({f"{name}.{k}": v for k, v in loaded.items()})
    return state


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus")
    straight = run(tiny_run_args(corpus, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]

    resumed_out = tmp_path / "resumed"
    driver = tmp_path / "crash_driver.py"
    driver.write_text(CRASHING_DRIVER)
    crashed = run([str(driver), *tiny_run_args(corpus, resumed_out)], CRASH_AT="5")
    assert crashed.returncode == 17, crashed.stderr[-3000:]
    # Killed in epoch 1 after the step-4 checkpoint: one intra-epoch checkpoint.
    ckpts = sorted((resumed_out / "save").glob("CKPT+*"))
    assert len(ckpts) == 1
    meta = (ckpts[0] / "CKPT.yaml").read_text()
    assert "brain_intra_epoch_ckpt: true" in meta and "end-of-epoch: false" in meta
    assert "step: 4" in (ckpts[0] / "brain.ckpt").read_text()
    assert (
        not (resumed_out / "train_log.txt").is_file()
        or "epoch: 1" not in (resumed_out / "train_log.txt").read_text()
    )

    restarted = run(tiny_run_args(corpus, resumed_out))
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert (
        f"Loading a checkpoint from {ckpts[0]}" in restarted.stdout + restarted.stderr
    )
    log = (resumed_out / "train_log.txt").read_text()
    assert log.count("epoch: 1,") == 1 and log.count("epoch: 2,") == 1

    expected, got = final_weights(tmp_path / "straight"), final_weights(resumed_out)
    assert expected.keys() == got.keys()
    different = [
        k for k in expected if not torch.allclose(expected[k], got[k], atol=1e-6)
    ]
    assert not different, f"resumed run differs in {different[:5]}"
    # The logged losses and accuracies match too.
    log_straight = (tmp_path / "straight" / "train_log.txt").read_text()
    assert log_straight.replace("\n", "") == log.replace("\n", "")
