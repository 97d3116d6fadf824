"""The command line's written contract, docs/cli.md.

One spelling per concept (the old ones hidden, working and warning), help
texts that quote hparams/verification.yaml's defaults from the YAML,
``--version``, a ``schema`` field and the documented fields in every
``--json`` output, and a mistyped local ``--model`` reported at once.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REPO  # noqa: E402
from model_builders import imported_folder, real_wavs  # noqa: E402

from speechbrain_eres2net import __version__, settings  # noqa: E402
from speechbrain_eres2net.cli.main import build_parser, main  # noqa: E402
from speechbrain_eres2net.cli.quickstart import parse_args as quickstart_args  # noqa: E402
from speechbrain_eres2net.settings import SETTING_KEYS, default  # noqa: E402

CLI_DOC = REPO / "docs" / "cli.md"
YAML = "hparams/verification.yaml"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, by name (quickstart has its own)."""
    action = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return dict(action.choices)


COMMANDS = sorted(subcommands())


def help_text(command: str, capsys) -> str:
    """``eres2net COMMAND --help``, its lines joined with single spaces."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def quoted_defaults(text: str) -> list[tuple[str, str]]:
    """The ``key = value`` pairs quoted before ``in hparams/verification.yaml``."""
    quotes = re.findall(r"((?:\w+ = [^\s/)]+(?: / )?)+) in " + re.escape(YAML), text)
    return re.findall(r"(\w+) = ([^\s/)]+)", " ".join(quotes))


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"eres2net {__version__}\n"
    run = subprocess.run(
        [sys.executable, "-m", "speechbrain_eres2net.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert (run.returncode, run.stdout) == (0, f"eres2net {__version__}\n")


def test_every_help_quotes_the_yaml_defaults_it_names(capsys):
    assert "quickstart" in COMMANDS and len(COMMANDS) == 11
    where: dict[str, set[str]] = {}
    for command in COMMANDS:
        text = help_text(command, capsys)
        pairs = quoted_defaults(text)
        # Every mention of the YAML quotes a value, and each is the YAML's.
        assert text.count(YAML) == len(re.findall(r" in " + re.escape(YAML), text))
        for key, value in pairs:
            assert value == str(default(key)), (command, key, value)
            where.setdefault(key, set()).add(command)
    running = {"embed", "verify", "score", "enroll", "identify"}
    for key in ("vad", "min_speech_seconds", "trim_pad_seconds", "batch_size"):
        assert running - {"verify"} <= where[key], key
    assert where["p_target"] == where["c_miss"] == where["c_fa"] == {"verify"}
    assert where["identify_top_k"] == {"identify"}
    assert where["p_enrolled"] == {"identify", "diarize"}
    for key in ("diarize_clustering", "diarize_p_same", "diarize_window_seconds"):
        assert where[key] == {"diarize"}, key
    assert where["gallery_scoring"] == {"identify"}
    assert where["min_enroll_speech_seconds"] == {"enroll"}
    assert where["batch_seconds_cpu"] == where["batch_seconds_cuda"]
    # The AS-norm cohort is no option of identify's, whatever it is called.
    assert "top_k" not in where


def test_help_is_generated_from_the_yaml(monkeypatch, capsys):
    values = {**settings._read(), "p_target": 0.125, "identify_top_k": 9}
    monkeypatch.setattr(settings, "_read", lambda: values)
    assert "(default: p_target = 0.125 in hparams" in help_text("verify", capsys)
    assert "(default: identify_top_k = 9 in hparams" in help_text("identify", capsys)


def test_options_that_set_a_yaml_default_are_spelled_as_its_key():
    checked = set()
    for command, parser in subcommands().items():
        for action in parser._actions:
            if action.dest not in SETTING_KEYS or action.help == argparse.SUPPRESS:
                continue
            spelled = "--" + action.dest.replace("_", "-")
            assert action.option_strings == [spelled], (command, action.option_strings)
            checked.add(action.dest)
    assert {"identify_top_k", "gallery_scoring", "min_enroll_speech_seconds"} < checked


def test_what_a_command_writes_is_out_and_a_checkpoint_is_an_option():
    parsers = subcommands()
    for command in ("embed", "score", "export-hub", "import-3dspeaker", "export-onnx"):
        visible = {
            s
            for a in parsers[command]._actions
            if a.help != argparse.SUPPRESS
            for s in a.option_strings
        }
        assert "--out" in visible, command
        assert not visible & {"--output-dir", "--output-folder", "--int8"}, command
    for command in ("export-hub", "import-3dspeaker"):
        visible = [a for a in parsers[command]._actions if a.help != argparse.SUPPRESS]
        assert not [a for a in visible if not a.option_strings], command
        assert any("--checkpoint" in a.option_strings for a in visible)
    assert quickstart_args(["--out", "q"]).out == "q"


OLD_SPELLINGS = [
    # (command and arguments, old spelling, new spelling, dest)
    (["score", "--model", "m", "--trials", "t", "--data-root", "d"], "--output-dir",
     "--out", "out", ["x"]),
    (["export-onnx", "--model", "m", "--out", "o"], "--int8", "--int8-calibration",
     "int8_calibration", ["a", "b"]),
    (["identify", "--model", "m", "--gallery", "g", "a.wav"], "--top-k",
     "--identify-top-k", "identify_top_k", ["3"]),
    (["identify", "--model", "m", "--gallery", "g", "a.wav"], "--scoring",
     "--gallery-scoring", "gallery_scoring", ["max"]),
    (["enroll", "--model", "m", "--gallery", "g", "--speaker", "s", "a.wav"],
     "--min-enroll-seconds", "--min-enroll-speech-seconds",
     "min_enroll_speech_seconds", ["4"]),
]  # fmt: skip


@pytest.mark.parametrize("base, old, new, dest, values", OLD_SPELLINGS)
def test_old_spellings_work_hidden_and_warn_once_each(
    base, old, new, dest, values, capsys
):
    parser = build_parser()
    with_new = parser.parse_args([*base, *(x for v in values for x in (new, v))])
    assert capsys.readouterr().err == ""
    with_old = parser.parse_args([*base, *(x for v in values for x in (old, v))])
    assert getattr(with_old, dest) == getattr(with_new, dest)
    warning = (
        f"eres2net: warning: {old} is deprecated, use {new} (the old spelling goes "
        "in the next release)\n"
    )
    assert capsys.readouterr().err == warning * len(values)
    assert old + " " not in help_text(base[0], capsys)


def test_old_quickstart_and_import_spellings_work_and_warn(capsys):
    assert quickstart_args(["--output-folder", "q"]).out == "q"
    assert "--output-folder is deprecated, use --out" in capsys.readouterr().err
    # The SpeechBrain recipe spelling is no older one of ours: no warning.
    assert quickstart_args(["--output_folder", "q"]).out == "q"
    assert capsys.readouterr().err == ""

    parser = build_parser()
    new = parser.parse_args(["import-3dspeaker", "--checkpoint", "c.pt", "--out", "o"])
    old = parser.parse_args(["import-3dspeaker", "c.pt", "--out", "o"])
    assert new.checkpoint == old.checkpoint == "c.pt"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "positional CHECKPOINT is deprecated" in err
    assert "positional arguments" not in help_text("import-3dspeaker", capsys)


def test_import_without_a_checkpoint_is_one_line(run_cli, tmp_path):
    code, _, err = run_cli(["import-3dspeaker", "--out", tmp_path / "m"])
    assert code == 1
    assert err == (
        "eres2net import-3dspeaker: error: --checkpoint is required (the official "
        ".ckpt/.pt file)\n"
    )


MODEL_COMMANDS = {
    "embed": ["a.wav", "--out", "e.npz"],
    "verify": ["a.wav", "a.wav"],
    "score": ["--trials", "t.txt", "--data-root", "."],
    "enroll": ["--gallery", "g.npz", "--speaker", "s", "a.wav"],
    "identify": ["--gallery", "g.npz", "a.wav"],
    "export-onnx": ["--out", "m.onnx"],
}


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
@pytest.mark.parametrize("mistyped", ["models/eres2nett", "./eres2net", "a/b/c"])
def test_mistyped_local_model_is_named_at_once(
    command, mistyped, tmp_path, monkeypatch, run_cli, no_network
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    start = time.monotonic()
    code, out, err = run_cli([command, "--model", mistyped, *MODEL_COMMANDS[command]])
    assert time.monotonic() - start < 2
    assert (code, out) == (1, "")
    assert err == (
        f"eres2net {command}: error: --model: model folder not found: {mistyped}\n"
    )


def test_a_file_given_as_model_is_named(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"")
    code, _, err = run_cli(["verify", "--model", "a.wav", "a.wav", "a.wav"])
    assert code == 1
    assert err == (
        "eres2net verify: error: --model: a.wav is not a model folder: it is a file\n"
    )


def documented_fields(command: str) -> set[str]:
    """The fields docs/cli.md lists for ``COMMAND --json``."""
    text = CLI_DOC.read_text(encoding="utf-8")
    section = text.split(f"### `{command} --json`", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_every_json_output_has_a_schema_and_its_documented_fields(tmp_path, run_cli):
    folder = imported_folder()
    wavs = real_wavs(4)
    gallery = tmp_path / "g.npz"
    model = ["--model", folder, "--no-fast", "--vad", "off"]
    common = [*model, "--no-progress"]
    code, _, err = run_cli(
        ["enroll", *common, "--gallery", gallery, "--speaker", "ann", *wavs[:2]]
        + ["--min-enroll-speech-seconds", "0"]
    )
    assert code == 0, err

    code, out, _ = run_cli(["gallery", "--gallery", gallery, "--json"])
    listing = json.loads(out)
    assert code == 0 and set(listing) == documented_fields("gallery")
    assert listing["schema"] == 1 and listing["dim"] == 64
    assert [s["name"] for s in listing["speakers"]] == ["ann"]
    assert set(listing["speakers"][0]) == {"name", "recordings", "seconds"}

    code, out, _ = run_cli(
        ["verify", *model, *wavs[:2], "--threshold", "0.3", "--json"]
    )
    decision = json.loads(out)
    assert code == 0 and set(decision) == documented_fields("verify")
    assert decision["schema"] == 1
    assert (decision["on"], decision["threshold"]) == ("score", 0.3)
    assert decision["accept"] == (decision["score"] > 0.3)

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    queries = [*wavs[2:], broken]
    code, out, err = run_cli(
        ["identify", *common, "--gallery", gallery, *queries]
        + ["--threshold", "0.2", "--json", "--identify-top-k", "1"]
    )
    answers = {a["file"]: a for a in map(json.loads, out.splitlines())}
    assert code == 1 and err.count("\n") == 1 and str(broken) in err
    assert set(answers) == {str(q) for q in queries}
    documented = documented_fields("identify")
    assert all(a["schema"] == 1 for a in answers.values())
    failed = answers.pop(str(broken))
    assert set(failed) == documented - {"on", "threshold"}
    assert failed["speaker"] is None and failed["candidates"] == [] and failed["error"]
    for answer in answers.values():
        assert set(answer) == documented - {"error"}
        assert (answer["on"], answer["threshold"]) == ("score", 0.2)
        (best,) = answer["candidates"]
        assert best["speaker"] == "ann" and best["llr"] is None
        assert answer["speaker"] == ("ann" if best["score"] > 0.2 else None)
