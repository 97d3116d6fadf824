"""Model sources: what a folder may run, Hub ids with their files, mistyped paths.

A model folder's ``hyperparams.yaml`` is HyperPyYAML, which runs what its
tags name: a folder naming code outside ``model_folder_trusted_targets``
(verification.yaml) is refused before anything runs, unless the user trusts
it. A Hub id is read from the Hugging Face cache (a pre-filled one here,
offline), calibration included; a mistyped local path never reaches the
network.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REPO  # noqa: E402
from model_builders import (  # noqa: E402
    ecapa_folder,
    imported_folder,
    real_wavs,
    recipe_folder,
)

from speechbrain_eres2net.evaluation.calibration import Calibration  # noqa: E402
from speechbrain_eres2net.evaluation.decisions import (  # noqa: E402
    CALIBRATION_FILE,
    folder_calibration,
)
from speechbrain_eres2net.export.model_folder import inference_yaml  # noqa: E402
from speechbrain_eres2net.export.yaml_nodes import training_nodes  # noqa: E402
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder  # noqa: E402
from speechbrain_eres2net.inference.folder import (  # noqa: E402
    UnreachableModelError,
    UntrustedModelError,
    check_hyperparams,
    folder_file,
    load_model_folder,
    model_source,
)

REPO_ID = "someone/eres2net-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def folder_with(tmp_path: Path, edit) -> Path:
    """A copy of the imported folder with ``edit(text)`` as its hyperparams.yaml."""
    folder = tmp_path / "model"
    shutil.copytree(imported_folder(), folder)
    hparams = folder / "hyperparams.yaml"
    hparams.write_text(edit(hparams.read_text()))
    return folder


def tone(path: Path) -> Path:
    """One second of a 440 Hz tone (a valid audio file)."""
    t = np.arange(16000) / 16000
    soundfile.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), 16000)
    return path


def fill_hub_cache(
    monkeypatch, cache: Path, folder: Path | None = None, repo_id: str = REPO_ID
) -> None:
    """Uses ``cache`` as the Hugging Face cache, offline; ``folder`` as ``repo_id``.

    The layout is huggingface_hub's: ``models--user--repo/snapshots/<commit>``
    holding the files and ``refs/main`` naming the commit.
    """
    import huggingface_hub.constants as constants

    if folder is not None:
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        shutil.copytree(folder, repo / "snapshots" / COMMIT)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(COMMIT)
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these once, at import; its calls use the constants.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_apply_in_a_folder_is_refused_and_runs_only_when_trusted(tmp_path, run_cli):
    marker = tmp_path / "FILE"
    folder = folder_with(
        tmp_path,
        lambda text: (
            text + f'\nsurprise: !apply:os.system ["echo code ran > {marker}"]\n'
        ),
    )
    a, b = real_wavs(2)
    verify = ["verify", "--model", folder, a, b, "--threshold", "0.5"]
    code, out, err = run_cli(verify)
    assert code == 1 and out == ""
    assert err.count("\n") == 1, err
    assert f"{folder}/hyperparams.yaml: 'surprise' uses !apply:os.system" in err
    assert "not on the allow-list" in err and "--trust-model-code" in err
    assert not marker.exists()

    code, out, err = run_cli([*verify, "--trust-model-code"])
    assert code == 0, err
    assert marker.read_text().strip() == "code ran"
    assert out.startswith("score ")


# name -> (line to insert after, None: at the end; YAML with MARK; refusal)
UNTRUSTED = {
    "module-argument": (
        "  global_fusion: bottom_up\n",
        "  extra: !new:subprocess.Popen [[touch, MARK]]\n",
        "'embedding_model.extra' uses !new:subprocess.Popen",
    ),
    "nested": (  # in a sequence argument of a trusted class
        None,
        "holder: !new:torch.nn.Sequential [!new:subprocess.Popen [[touch, MARK]]]\n",
        "'holder[0]' uses !new:subprocess.Popen",
    ),
    "run_shell": (  # SpeechBrain code that runs shell commands
        None,
        'x: !new:speechbrain.utils.superpowers.run_shell ["touch MARK"]\n',
        "'x' uses !new:speechbrain.utils.superpowers.run_shell",
    ),
    "attribute": (  # a trusted prefix reaching another module
        None,
        "x: !name:speechbrain_eres2net.lobes.eres2net.os.system\n",
        "'x' uses !name:speechbrain_eres2net.lobes.eres2net.os.system, which is ",
    ),
    "python-tag": (  # PyYAML's own code tags
        None,
        'x: !!python/object/apply:os.system ["touch MARK"]\n',
        "'x' uses the tag !!python/object/apply:os.system",
    ),
    "include": (None, "x: !include:other.yaml\n", "'x' uses !include:other.yaml"),
}


@pytest.mark.parametrize("case", UNTRUSTED)
def test_untrusted_targets_are_refused_before_anything_runs(tmp_path, case):
    after, snippet, refused = UNTRUSTED[case]
    marker = tmp_path / "FILE"
    snippet = snippet.replace("MARK", str(marker))

    def edit(text: str) -> str:
        assert after is None or after in text
        return text + snippet if after is None else text.replace(after, after + snippet)

    folder = folder_with(tmp_path, edit)
    with pytest.raises(UntrustedModelError, match="only for a folder you trust") as err:
        load_model_folder(folder)
    assert refused in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UntrustedModelError):
        SpeakerEmbedder.from_folder(folder, fast=False)
    assert not marker.exists()


def test_trust_code_reaches_the_folder_through_the_embedder(tmp_path):
    marker = tmp_path / "FILE"
    folder = folder_with(
        tmp_path,
        lambda text: text + f"holder: !new:subprocess.Popen [[touch, {marker}]]\n",
    )
    SpeakerEmbedder.from_folder(folder, fast=False, trust_code=True)
    for _ in range(100):  # Popen does not wait for touch
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists()


@pytest.mark.parametrize(
    "kind", ["eres2net-recipe", "ecapa-recipe", "3dspeaker-import"]
)
def test_every_folder_kind_we_write_loads_without_trust(kind):
    folder = {
        "eres2net-recipe": recipe_folder,
        "ecapa-recipe": ecapa_folder,
        "3dspeaker-import": imported_folder,
    }[kind]()
    model = load_model_folder(folder)
    assert model.mods.embedding_model is not None


@pytest.mark.parametrize(
    "recipe",
    sorted(
        p.name
        for p in (REPO / "hparams").glob("*.yaml")
        if p.name != "verification.yaml"
    ),
)
def test_the_folder_text_of_every_recipe_yaml_is_trusted(recipe):
    """What ``eres2net export-hub`` writes for each training YAML (nothing run)."""
    nodes = training_nodes(REPO / "hparams" / recipe, {"pretrained_path": "pre"})
    text = inference_yaml(nodes, ["embedding_model", "label_encoder"], 16000, None)
    check_hyperparams(text, recipe)


def test_hub_id_uses_its_calibration_from_the_cache(
    tmp_path, monkeypatch, run_cli, no_network
):
    local = tmp_path / "local"
    shutil.copytree(imported_folder(), local)
    Calibration(score_weight=10.0, bias=-5.0).save(local / CALIBRATION_FILE)
    fill_hub_cache(monkeypatch, tmp_path / "hf-cache", local)
    monkeypatch.chdir(tmp_path)
    a, b = real_wavs(2)

    decisions = []
    for model in (local, REPO_ID):
        code, out, err = run_cli(["verify", "--model", model, a, b, "--json"])
        assert code == 0, err
        decisions.append(json.loads(out))
    on_disk, on_hub = decisions
    assert on_hub["on"] == "llr" and on_hub["llr"] is not None
    assert on_hub == on_disk

    assert folder_file(REPO_ID, CALIBRATION_FILE).parent.name == COMMIT
    assert folder_file(REPO_ID, "no-such-file.json") is None
    assert folder_calibration(REPO_ID) == Calibration.load(local / CALIBRATION_FILE)


def test_hub_folder_is_checked_too(tmp_path, monkeypatch, no_network):
    folder = folder_with(tmp_path, lambda text: text + "x: !apply:os.getcwd []\n")
    fill_hub_cache(monkeypatch, tmp_path / "hf-cache", folder)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UntrustedModelError, match=f"^{REPO_ID}/hyperparams.yaml: 'x'"):
        load_model_folder(REPO_ID)


def test_mistyped_local_folder_fails_at_once(
    tmp_path, monkeypatch, run_cli, no_network
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    wav = tone(tmp_path / "a.wav")
    start = time.monotonic()
    code, _, err = run_cli(["verify", "--model", "models/eres2nett", wav, wav])
    assert time.monotonic() - start < 5
    assert code == 1
    assert err == (
        "eres2net verify: error: --model: model folder not found: models/eres2nett\n"
    )


@pytest.mark.parametrize(
    "source",
    ["models/eres2nett", "./x/y", "~/no-such-model", "/no/such/model", "a/b/c"],
)
def test_local_looking_names_are_never_hub_ids(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(FileNotFoundError, match="^model folder not found: "):
        model_source(source)
    assert model_source("someone/model") == "someone/model"


def test_uncached_hub_id_offline_is_one_line(
    tmp_path, monkeypatch, run_cli, no_network
):
    fill_hub_cache(monkeypatch, tmp_path / "hf-cache")
    monkeypatch.chdir(tmp_path)
    wav = tone(tmp_path / "a.wav")
    code, _, err = run_cli(["verify", "--model", "someone/not-cached", wav, wav])
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(
        "eres2net verify: error: someone/not-cached is neither a local model folder "
        "nor a reachable Hugging Face Hub repo"
    )
    with pytest.raises(UnreachableModelError) as caught:
        load_model_folder("someone/not-cached")
    assert isinstance(caught.value, OSError)
