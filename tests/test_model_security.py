"""Attack folders: a downloaded model folder runs no code, reads only itself.

Each attack is the imported tiny ERes2Net folder with its ``hyperparams.yaml``
(or a file) edited in ``tmp_path``; its payload writes a marker file if it
ever runs. Every one is refused before anything runs, in one line naming the
file, the key and the tag or path, and the marker does not exist afterwards.
Some payloads are also loaded trusted, which shows they are live.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from model_builders import (  # noqa: E402
    imported_folder,
    resnet_yaml,
    scratch_dir,
    train_side,
)

from speechbrain_eres2net.export.recipe import export_hub  # noqa: E402
from speechbrain_eres2net.inference.folder import (  # noqa: E402
    UntrustedModelError,
    folder_file,
    load_model_folder,
)
from speechbrain_eres2net.inference.yaml_guard import check_hyperparams  # noqa: E402

POPEN = '!!python/object/apply:os.system ["touch MARK"]'
TUPLE = "(!!python/object/apply:os.system ['touch MARK'])"
CKPT = "embedding_model: embedding_model.ckpt"


def append(snippet: str):
    return lambda text: text + "\n" + snippet + "\n"


def replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new)

    return edit


# name -> (edit of hyperparams.yaml, with MARK for the marker; refusal)
ATTACKS = {
    "tuple-tagged": (
        append(f'surprise: !tuple "{TUPLE}"'),
        "'surprise' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-implicit": (
        append('surprise: (!!python/object/apply:os.system ["touch MARK"])'),
        "'surprise' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-quoted": (  # quoted now, plain after HyperPyYAML's re-dump maybe
        append(f'surprise: "{TUPLE}"'),
        "'surprise' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-python-name": (
        append("surprise: (!!python/name:os.system , 1)"),
        "'surprise' holds tuple text with the tag !!python/name:os.system",
    ),
    "tuple-block-sequence": (
        append(
            'surprise:\n  - 1\n  - (!!python/object/apply:os.system ["touch MARK"])'
        ),
        "'surprise[1]' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-flow-sequence": (
        append(f'surprise: [1, !tuple "{TUPLE}"]'),
        "'surprise[1]' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-module-argument": (
        replace(
            "  global_fusion: bottom_up\n",
            f"  global_fusion: bottom_up\n  extra: {TUPLE}\n",
        ),
        "'embedding_model.extra' holds tuple text with the tag !!python/object/apply",
    ),
    "tuple-key": (
        append('(!!python/object/apply:os.system ["touch MARK"]): 1'),
        "holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-without-parentheses": (  # !tuple slices [1:-1] of any text
        append("surprise: !tuple \"x!!python/object/apply:os.system ['touch MARK']x\""),
        "'surprise' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "tuple-nested-document": (
        append(
            'surprise: !tuple "(1]\\n--- !!python/object/apply:os.system'
            " ['touch MARK']\\n--- [)\""
        ),
        "'surprise' holds tuple text of more than one YAML document",
    ),
    "ref-builds-tuple": (  # interpolation puts a tuple text together
        append(
            'head: "(!!python/object/apply:os.system"\n'
            "surprise: !ref \"<head> ['touch MARK'])\""
        ),
        "'surprise' holds tuple text with the tag !!python/object/apply:os.system",
    ),
    "ref-attribute": (  # <a.b> becomes !apply:getattr
        append("surprise: !ref <embedding_model.__class__>"),
        "'surprise' refers to <embedding_model.__class__>, an attribute",
    ),
    "python-object-apply": (
        append(f"surprise: {POPEN}"),
        "'surprise' uses the tag !!python/object/apply:os.system",
    ),
    "python-object-new": (
        append("surprise: !!python/object/new:subprocess.Popen [[touch, MARK]]"),
        "'surprise' uses the tag !!python/object/new:subprocess.Popen",
    ),
    "python-object": (
        append("surprise: !!python/object:subprocess.Popen {args: [touch, MARK]}"),
        "'surprise' uses the tag !!python/object:subprocess.Popen",
    ),
    "python-name": (
        append("surprise: !!python/name:os.system"),
        "'surprise' uses the tag !!python/name:os.system",
    ),
    "python-module": (
        append("surprise: !!python/module:os"),
        "'surprise' uses the tag !!python/module:os",
    ),
    "tag-directive": (  # %TAG makes a short handle for python tags
        lambda text: (
            "%TAG !x! tag:yaml.org,2002:python/object/apply:\n---\n"
            + text
            + '\nsurprise: !x!os.system ["touch MARK"]\n'
        ),
        "'surprise' uses the tag !!python/object/apply:os.system",
    ),
    "tagged-key": (
        append(f"? {POPEN}\n: 1"),
        "'<key>.<key>' uses the tag !!python/object/apply:os.system",
    ),
    "apply-off-list": (
        append('surprise: !apply:os.system ["touch MARK"]'),
        "'surprise' uses !apply:os.system, which is not on the allow-list",
    ),
    "apply-eval": (
        append(
            "surprise: !apply:builtins.eval [\"__import__('os').system('touch MARK')\"]"
        ),
        "'surprise' uses !apply:builtins.eval, which is not on the allow-list",
    ),
    "apply-getattr": (
        append("surprise: !apply:getattr [!name:os , system]"),
        "'surprise' uses !apply:getattr, which is not on the allow-list",
    ),
    "applyref": (
        append('surprise: !applyref:os.system ["touch MARK"]'),
        "'surprise' uses !applyref:os.system, which HyperPyYAML runs while resolving",
    ),
    "name-os-system": (
        append("surprise: !name:os.system"),
        "'surprise' uses !name:os.system, which is not on the allow-list",
    ),
    "name-eval": (
        append("surprise: !name:builtins.eval"),
        "'surprise' uses !name:builtins.eval, which is not on the allow-list",
    ),
    "module-subprocess": (
        append("surprise: !module:subprocess"),
        "'surprise' uses !module:subprocess, which is not on the allow-list",
    ),
    "new-popen": (
        append("surprise: !new:subprocess.Popen [[touch, MARK]]"),
        "'surprise' uses !new:subprocess.Popen, which is not on the allow-list",
    ),
    "dotted-walk": (  # a trusted prefix reaching os through an attribute
        append("surprise: !name:speechbrain_eres2net.lobes.eres2net.os.system"),
        "'surprise' uses !name:speechbrain_eres2net.lobes.eres2net.os.system, "
        "which is posix.system",
    ),
    "dotted-walk-torch": (
        append("surprise: !name:torch.nn.functional.torch.load"),
        "'surprise' uses !name:torch.nn.functional.torch.load, which is "
        "torch.serialization.load",
    ),
    "include": (
        append("surprise: !include:../../../etc/passwd"),
        "'surprise' uses !include:../../../etc/passwd, which HyperPyYAML runs",
    ),
    "anchor-alias": (
        append(f"base: &evil {POPEN}\nsurprise: *evil"),
        "'base' uses the tag !!python/object/apply:os.system",
    ),
    "anchor-plain": (
        append("base: &size 3\nsurprise: *size"),
        "'base' sets the YAML anchor &size",
    ),
    "merge-key": (
        append(f"surprise:\n  <<: {{x: {POPEN}}}"),
        "'surprise.<<.<key>' is a YAML merge key (<<)",
    ),
    "multi-document": (
        lambda text: "---\n" + text + f"\n---\nsurprise: {POPEN}\n",
        "hyperparams.yaml: holds 2 YAML documents, expected one",
    ),
    "custom-load-hook": (
        replace(
            f"    paths:\n        {CKPT}",
            f"    paths:\n        {CKPT}\n"
            "    custom_hooks:\n        embedding_model: !name:torch.nn.init.zeros_",
        ),
        "'pretrainer' names its own load hooks (embedding_model)",
    ),
    "path-parent": (
        replace(CKPT, "embedding_model: ../outside.ckpt"),
        "'pretrainer.paths.embedding_model' reads '",
    ),
    "path-absolute": (
        replace(CKPT, "embedding_model: /etc/passwd"),
        "'pretrainer.paths.embedding_model' reads '/etc/passwd', outside the folder",
    ),
    "path-url": (
        replace(CKPT, "embedding_model: https://example.com/x.ckpt"),
        "'pretrainer.paths.embedding_model' reads 'https://example.com/x.ckpt', a URL",
    ),
    "path-other-hub-repo": (
        replace(CKPT, "embedding_model: someone/else/embedding_model.ckpt"),
        "'pretrainer.paths.embedding_model' reads 'someone/else/embedding_model.ckpt'"
        ", not in the folder (SpeechBrain would fetch it from the Hub)",
    ),
}
# Payloads HyperPyYAML runs when trusted: the corpus is not of dead text.
LIVE = ["tuple-tagged", "tuple-implicit", "tuple-block-sequence", "anchor-alias"]


class Payload:
    """Unpickles into a call that creates ``marker`` (a checkpoint attack)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def attack_folder(tmp_path: Path, edit) -> Path:
    """A copy of the imported folder, ``hyperparams.yaml`` edited, MARK filled.

    A pickled payload lies beside it as ``outside.ckpt`` (what ``../`` paths
    reach).
    """
    folder = tmp_path / "model"
    shutil.copytree(imported_folder(), folder)
    hparams = folder / "hyperparams.yaml"
    text = edit(hparams.read_text()).replace("MARK", str(tmp_path / "ran"))
    hparams.write_text(text)
    torch.save({"x": Payload(tmp_path / "ran")}, tmp_path / "outside.ckpt")
    return folder


def refused_in_one_line(
    folder: Path, expected: str, trust_helps: bool = True, **kwargs
) -> str:
    """The error of loading ``folder`` untrusted; one line starting with a file."""
    with pytest.raises(UntrustedModelError) as err:
        load_model_folder(folder, **kwargs)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(folder))
    assert ("only for a folder you trust" in message) == trust_helps, message
    assert expected in message, message
    return message


def test_the_corpus_holds_at_least_25_attacks():
    assert len(ATTACKS) >= 25


@pytest.mark.parametrize("case", ATTACKS)
def test_attack_folder_is_refused_in_one_line_and_its_payload_never_runs(
    tmp_path, case, no_network
):
    edit, expected = ATTACKS[case]
    folder = attack_folder(tmp_path, edit)
    refused_in_one_line(folder, expected)
    time.sleep(0.05)  # a Popen would not wait for touch
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("case", LIVE)
def test_attack_payload_runs_when_the_folder_is_trusted(tmp_path, case):
    folder = attack_folder(tmp_path, ATTACKS[case][0])
    load_model_folder(folder, trust_code=True)
    assert (tmp_path / "ran").exists()


def test_checkpoint_symlink_leaving_the_folder_is_refused(tmp_path):
    folder = attack_folder(tmp_path, lambda text: text)
    (folder / "embedding_model.ckpt").unlink()
    (folder / "embedding_model.ckpt").symlink_to(tmp_path / "outside.ckpt")
    refused_in_one_line(
        folder, "'pretrainer.paths.embedding_model' reads", savedir=tmp_path / "s"
    )
    assert not (tmp_path / "ran").exists()


def test_hyperparams_symlink_leaving_the_folder_is_refused(tmp_path):
    folder = attack_folder(tmp_path, lambda text: text)
    outside = tmp_path / "outside.yaml"
    shutil.move(folder / "hyperparams.yaml", outside)
    (folder / "hyperparams.yaml").symlink_to(outside)
    refused_in_one_line(folder, "is a link to a file outside the folder")


def test_calibration_symlink_leaving_the_folder_is_refused(tmp_path):
    folder = attack_folder(tmp_path, lambda text: text)
    (tmp_path / "outside.json").write_text("{}")
    (folder / "calibration.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(UntrustedModelError, match="link to a file outside"):
        folder_file(folder, "calibration.json")


def test_pickled_checkpoint_is_refused_even_with_torch_forced_to_unpickle(
    tmp_path, monkeypatch
):
    # torch honours this variable only where weights_only is not passed.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    folder = attack_folder(tmp_path, lambda text: text)
    shutil.copy(tmp_path / "outside.ckpt", folder / "embedding_model.ckpt")
    message = refused_in_one_line(
        folder, "embedding_model.ckpt: holds pickled", trust_helps=False
    )
    assert "weights_only=True" in message and "posix.system" in message
    assert not (tmp_path / "ran").exists()


def test_trusted_folder_with_an_off_list_target_still_loads(tmp_path):
    folder = attack_folder(tmp_path, append("helper: !name:collections.OrderedDict"))
    refused_in_one_line(folder, "'helper' uses !name:collections.OrderedDict")
    model = load_model_folder(folder, trust_code=True)
    assert model.hparams.helper.__name__ == "OrderedDict"


def test_checked_text_is_the_loaded_text_even_if_the_file_changes(
    tmp_path, monkeypatch
):
    """The file is read once: swapping it after the check changes nothing."""
    from speechbrain_eres2net.inference import folder as folder_module

    folder = attack_folder(tmp_path, lambda text: text)
    hparams = folder / "hyperparams.yaml"
    swapped = hparams.read_text() + f"\nsurprise: {TUPLE}\n".replace(
        "MARK", str(tmp_path / "ran")
    )

    def check_then_swap(text, name, trusted=None):
        check_hyperparams(text, name, trusted)
        hparams.write_text(swapped)

    monkeypatch.setattr(folder_module, "check_hyperparams", check_then_swap)
    model = load_model_folder(folder)
    assert "surprise" not in model.hparams.__dict__
    assert not (tmp_path / "ran").exists()


def resnet_folder() -> Path:
    """Model folder of a tiny checkpointed SpeechBrain ResNet (random weights)."""
    out = scratch_dir("eres2net-resnet-")
    recipe_yaml = resnet_yaml(out)
    hp = train_side(out, recipe_yaml=recipe_yaml)
    return export_hub(recipe_yaml, hp["save_folder"], out / "model")


def test_resnet_folder_loads_without_trust():
    model = load_model_folder(resnet_folder())
    assert type(model.mods.embedding_model).__name__ == "ResNet"


def test_imported_folder_loads_without_trust_into_a_savedir(tmp_path):
    model = load_model_folder(imported_folder(), savedir=tmp_path / "s")
    assert model.mods.embedding_model is not None
    assert (tmp_path / "s" / "hyperparams.yaml").exists()
