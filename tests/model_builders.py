"""Model folders and real recordings that many test modules share.

Not a test module: the builders are cached per process (``functools.cache``),
so test_hub, test_cli, test_onnx and the rest build each folder once. A
model folder here has random weights with randomised BatchNorm statistics,
so that a wrong or missing tensor changes the embeddings.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REALSPK, REPO, has_speech, randomize_batchnorm  # noqa: E402
from oracle import official  # noqa: E402

from speechbrain_eres2net.export.import_3dspeaker import import_3dspeaker  # noqa: E402
from speechbrain_eres2net.export.recipe import export_hub  # noqa: E402

QUICKSTART_YAML = REPO / "hparams" / "quickstart.yaml"
N_SPEAKERS = 7


def scratch_dir(prefix: str) -> Path:
    """A temporary folder removed when the test process exits."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


def train_side(
    output_folder: Path, seed: int = 0, recipe_yaml: Path = QUICKSTART_YAML
) -> dict:
    """The recipe's modules from its YAML, randomised and checkpointed."""
    torch.manual_seed(seed)
    with open(recipe_yaml, encoding="utf-8") as f:
        hp = load_hyperpyyaml(
            f,
            {
                "data_folder": str(output_folder / "no-data"),
                "output_folder": str(output_folder),
                "out_n_neurons": N_SPEAKERS,
            },
        )
    randomize_batchnorm(hp["embedding_model"], seed)
    with torch.no_grad():
        for p in hp["classifier"].parameters():
            p.normal_()
    hp["embedding_model"].eval()
    from speechbrain.dataio.encoder import CategoricalEncoder

    encoder = CategoricalEncoder()
    encoder.update_from_iterable([f"spk{i}" for i in range(N_SPEAKERS)])
    save = Path(hp["save_folder"])
    save.mkdir(parents=True, exist_ok=True)
    encoder.save(save / "label_encoder.txt")
    hp["checkpointer"].save_checkpoint()
    return hp


@functools.cache
def ecapa_folder() -> Path:
    """Model folder of a tiny checkpointed ECAPA-TDNN recipe (quickstart_ecapa)."""
    recipe = REPO / "hparams" / "quickstart_ecapa.yaml"
    out = scratch_dir("eres2net-ecapa-")
    hp = train_side(out, recipe_yaml=recipe)
    return export_hub(recipe, hp["save_folder"], out / "model")


@functools.cache
def recipe_run() -> tuple[Path, dict]:
    """(output folder, hparams) of a checkpointed tiny recipe model."""
    out = scratch_dir("eres2net-recipe-")
    return out, train_side(out)


@functools.cache
def recipe_folder() -> Path:
    """Model folder exported from :func:`recipe_run` (no trials)."""
    out, hp = recipe_run()
    return export_hub(QUICKSTART_YAML, hp["save_folder"], out / "model")


def trial_subset(target: Path, per_label: int = 5) -> Path:
    """A few realspk dev trials of each label, with the shortest files (fast)."""
    wav = REALSPK / "wav"
    lines = (REALSPK / "dev_trials.txt").read_text().splitlines()

    def size(line: str) -> int:
        return sum((wav / p).stat().st_size for p in line.split()[1:])

    def enough(line: str) -> bool:
        return has_speech(line, wav)

    chosen = []
    for label in ("1", "0"):
        same = sorted((line for line in lines if line.split()[0] == label), key=size)
        chosen += [line for line in same[: 6 * per_label] if enough(line)][:per_label]
    target.write_text("\n".join(chosen) + "\n")
    return target


def real_wavs(n: int = 4) -> list[Path]:
    """``n`` short real utterances of different speakers and lengths."""
    files = sorted((REALSPK / "wav").glob("*/*/*.wav"))
    if not files:
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    short = sorted(files, key=lambda f: f.stat().st_size)[: 20 * n]
    return sorted(short)[::20][:n]


@functools.cache
def official_checkpoint(variant: str = "v1") -> tuple[torch.nn.Module, Path]:
    """(official model, saved state_dict path) of a tiny random model."""
    v1, v2, _ = official()
    torch.manual_seed(3)
    if variant == "v1":
        model = v1.ERes2Net(num_blocks=[1, 1, 1, 1], m_channels=8, embedding_size=64)
    else:
        # m_channels 32: with fewer, the stage-1 group width cannot tell the
        # V2 base width 26 from 24 (checkpoints.infer_config reads it there).
        model = v2.ERes2NetV2(num_blocks=[1, 1, 1, 1], m_channels=32, embedding_size=48)
    randomize_batchnorm(model, seed=5)
    model.eval()
    path = scratch_dir("eres2net-official-") / f"pretrained_{variant}.ckpt"
    torch.save(model.state_dict(), path)
    return model, path


@functools.cache
def imported_folder() -> Path:
    """Model folder imported from the tiny official ERes2Net."""
    _, path = official_checkpoint("v1")
    return import_3dspeaker(path, path.parent / "imported")


def randomise_batchnorms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Gives every BN non-trivial statistics so that folding is tested."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.3 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.2 * torch.randn(n, generator=generator))
    return model.eval()


RESNET_NODE = """embedding_model: !new:speechbrain.lobes.models.ResNet.ResNet
    input_size: !ref <n_mels>
    channels: [8, 8, 16, 16]
    block_sizes: [1, 1, 1, 1]
    strides: [1, 2, 2, 2]
    lin_neurons: !ref <emb_dim>
"""


def resnet_yaml(folder: Path) -> Path:
    """quickstart_ecapa.yaml with SpeechBrain's ResNet lobe (a few channels)."""
    text = (REPO / "hparams" / "quickstart_ecapa.yaml").read_text()
    text, count = re.subn(
        r"embedding_model: !new:speechbrain\.lobes\.models\.ECAPA_TDNN\.ECAPA_TDNN\n"
        r"(?:    .*\n)+",
        RESNET_NODE,
        text,
    )
    assert count == 1
    path = folder / "quickstart_resnet.yaml"
    path.write_text(text)
    return path
