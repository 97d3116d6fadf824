"""Two CPU processes (gloo) train two epochs with SpeechBrain DDP and agree.

The recipe script runs under ``python -m torch.distributed.run
--nproc_per_node=2``; a thin driver saves each rank's weights after the
script returns, so the test can check that both processes hold the same
model and that it moved away from its initialisation, and records the items
each rank draws: the ranks must split every epoch into disjoint halves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_recipe import REPO, tiny_corpus, tiny_run_args  # noqa: E402

from speechbrain_eres2net.dataio.speaker_csv import read_speaker_csv  # noqa: E402

# Runs the recipe script in this process, recording the items of every
# training batch this rank draws, then saves what this rank holds.
RANK_DRIVER = """
import os, runpy, sys, torch
from speechbrain_eres2net.training.brain import SpeakerBrain
out = sys.argv[1]
sys.argv = sys.argv[2:]
drawn = []
original = SpeakerBrain.on_fit_batch_start
def on_fit_batch_start(self, batch, should_step):
    drawn.append((int(self.current_epoch), list(batch.id)))
    return original(self, batch, should_step)
SpeakerBrain.on_fit_batch_start = on_fit_batch_start
scope = runpy.run_path(sys.argv[0], run_name="__main__")
hparams = scope["hparams"]
torch.save(
    {
        "embedding_model": hparams["embedding_model"].state_dict(),
        "classifier": hparams["classifier"].state_dict(),
        "world_size": int(os.environ["WORLD_SIZE"]),
        "drawn": drawn,
    },
    os.path.join(out, f"rank{os.environ['RANK']}.pt"),
)
"""


@pytest.mark.slow
def test_two_gloo_processes_finish_an_epoch_with_equal_weights(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus")
    driver = tmp_path / "rank_driver.py"
    driver.write_text(RANK_DRIVER)
    output = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(driver),
        str(tmp_path),
        *tiny_run_args(
            corpus,
            output,
            batch_size=4,  # global: 2 per process
            number_of_epochs=2,
            ckpt_interval_steps=0,
            distributed_backend="gloo",
            device="cpu",
        ),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # Each epoch, the ranks draw disjoint halves that together cover the
    # training set once, in a new order each epoch.
    train_ids = set(read_speaker_csv(output / "save" / "train.csv"))
    assert len(train_ids) == 16
    orders = {}
    for epoch in (1, 2):
        seen = [
            [i for e, ids in rank["drawn"] if e == epoch for i in ids] for rank in ranks
        ]
        assert [len(s) for s in seen] == [8, 8], (epoch, seen)
        assert not set(seen[0]) & set(seen[1]), (epoch, seen)
        assert set(seen[0]) | set(seen[1]) == train_ids, epoch
        orders[epoch] = seen
    assert orders[1] != orders[2]
    for module in ("embedding_model", "classifier"):
        params0, params1 = ranks[0][module], ranks[1][module]
        assert params0.keys() == params1.keys()
        for key in params0:
            if "running" in key or "num_batches" in key:
                continue  # BN statistics are local until DDP broadcasts them
            assert torch.allclose(params0[key], params1[key], atol=1e-6), key

    log = (output / "train_log.txt").read_text()
    assert "epoch: 1," in log and "epoch: 2," in log
    ckpts = list((output / "save").glob("CKPT+*"))
    assert len(ckpts) == 1
    saved = torch.load(ckpts[0] / "embedding_model.ckpt")
    for key, value in saved.items():
        assert torch.allclose(value, ranks[0]["embedding_model"][key], atol=1e-6)
    # Training changed the model: a fresh one of the same seed differs.
    from speechbrain_eres2net.training.recipe import load_hparams

    fresh = load_hparams(
        REPO / "hparams" / "quickstart.yaml",
        {
            "data_folder": corpus["root"],
            "output_folder": str(tmp_path / "fresh"),
            "m_channels": 4,
            "emb_dim": 16,
        },
    )["embedding_model"].state_dict()
    moved = [
        k
        for k in fresh
        if fresh[k].is_floating_point() and not torch.allclose(fresh[k], saved[k])
    ]
    assert moved
