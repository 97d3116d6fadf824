"""Speech presence: recordings without enough speech never reach a decision.

Driven through the command line and Python as users feed a speaker model:
silence, noise, hum, tones, clicks, speech wrapped in long silence, short
clips, hour-long files, calibrations used outside their range.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REPO  # noqa: E402
from model_builders import real_wavs, recipe_folder  # noqa: E402

from speechbrain_eres2net.dataio.vad import (  # noqa: E402
    SileroVAD,
    Speech,
    SpeechDetector,
)
from speechbrain_eres2net.evaluation.calibration import Calibration  # noqa: E402
from speechbrain_eres2net.inference.embedder import (  # noqa: E402
    NotEnoughSpeechError,
    SpeakerEmbedder,
)

RATE = 16000


def non_speech(seconds: float = 3.0, seed: int = 0) -> dict[str, np.ndarray]:
    """What users feed a speaker model that holds no speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    clicks = np.zeros_like(t)
    clicks[:: RATE // 4] = 0.9
    return {
        "zero": np.zeros_like(t),
        "dither": rng.normal(size=t.size) * 3e-5,
        "noise_-40dB": rng.normal(size=t.size) * 0.01,
        "noise_-6dB": np.clip(rng.normal(size=t.size) * 0.5, -1, 1),
        "brown": np.cumsum(rng.normal(size=t.size)) * 1e-3,
        "hum": 0.3 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t),
        "tone_440": 0.5 * np.sin(2 * np.pi * 440 * t),
        "tone_200": 0.5 * np.sin(2 * np.pi * 200 * t),
        "dtmf": 0.25 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t)),
        "chirp": 0.5 * np.sin(2 * np.pi * (200 + 400 * t) * t),
        "clicks": clicks,
    }


def write(path: Path, wav: np.ndarray, rate: int = RATE) -> Path:
    soundfile.write(path, np.asarray(wav, dtype=np.float32), rate)
    return path


def wrapped(speech: Path, out: Path, before: float, after: float) -> Path:
    """``speech`` with ``before`` / ``after`` seconds of near-silence around it."""
    wav, rate = soundfile.read(speech, dtype="float32")
    rng = np.random.default_rng(1)
    pad = [
        rng.normal(size=int(s * rate)).astype(np.float32) * 1e-4
        for s in (before, after)
    ]
    return write(out, np.concatenate([pad[0], wav, pad[1]]), rate)


def test_batched_silero_equals_the_package_model(realspk):
    """Our batch form of Silero VAD against the package's own TorchScript model."""
    threads = torch.get_num_threads()
    from silero_vad import load_silero_vad

    torch.set_num_threads(threads)  # importing silero_vad sets 1 thread
    package = load_silero_vad()
    ours = SileroVAD.from_package()
    speech = soundfile.read(real_wavs(1)[0], dtype="float32")[0]
    noise = np.random.default_rng(0).normal(size=20000).astype(np.float32) * 0.01
    wav = torch.from_numpy(np.concatenate([speech, noise, speech]))
    with torch.no_grad():
        package.reset_states()
        expected = package.audio_forward(wav, RATE)
        got, _ = ours(wav.unsqueeze(0))
        # Block by block, the state carried over, gives the same stream.
        first, state = ours(wav[: 512 * 30].unsqueeze(0))
        rest, _ = ours(wav[512 * 30 :].unsqueeze(0), state)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(torch.cat([first, rest], dim=1), got, atol=1e-6)


def test_non_speech_has_no_speech_and_real_speech_has_enough(realspk):
    detector = SpeechDetector()
    for name, wav in non_speech().items():
        found = detector(torch.from_numpy(wav).float(), RATE)
        assert found.seconds < 0.25, (name, found.seconds)
    for path in real_wavs(8):
        wav, rate = soundfile.read(path, dtype="float32")
        found = detector(torch.from_numpy(wav), rate)
        assert 1.0 <= found.seconds <= found.duration, (path, found.seconds)


def test_detector_segments_at_another_rate(realspk):
    """8 kHz audio: segments are in the caller's samples."""
    import torchaudio

    wav, _ = soundfile.read(real_wavs(1)[0], dtype="float32")
    wav16 = torch.from_numpy(wav)
    wav8 = torchaudio.functional.resample(wav16, RATE, 8000)
    at16, at8 = SpeechDetector()(wav16, RATE), SpeechDetector()(wav8, 8000)
    assert at8.sample_rate == 8000 and at8.samples == wav8.shape[0]
    assert abs(at8.seconds - at16.seconds) < 0.1


@pytest.mark.parametrize("kind", ["zero", "noise_-6dB", "tone_440", "hum", "clicks"])
def test_verify_refuses_non_speech_in_one_line(kind, tmp_path, run_cli, realspk):
    folder = recipe_folder()
    bad = write(tmp_path / f"{kind}.wav", non_speech()[kind])
    speech = real_wavs(1)[0]
    code, out, err = run_cli(["verify", "--model", folder, speech, bad])
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{kind}.wav: 0.00 s of net speech in 3.00 s of audio" in lines[0]
    assert "less than the 1 s minimum" in lines[0]


def test_two_silent_files_are_never_the_same_speaker(tmp_path, run_cli):
    folder = recipe_folder()
    a = write(tmp_path / "a.wav", np.zeros(3 * RATE))
    b = write(tmp_path / "b.wav", np.zeros(5 * RATE))
    code, out, err = run_cli(["verify", "--model", folder, a, b, "--json"])
    assert code == 1 and "same speaker" not in out + err
    # --vad off is the explicit override: a decision, as before.
    code, out, _ = run_cli(
        [
            "verify",
            "--model",
            folder,
            a,
            b,
            "--json",
            "--vad",
            "off",
            "--threshold",
            "0.5",
        ],
    )
    assert code == 0 and json.loads(out)["score"] > 0.99


def test_min_speech_seconds_is_the_boundary(tmp_path, run_cli, realspk):
    folder = recipe_folder()
    speech = real_wavs(1)[0]
    wav, rate = soundfile.read(speech, dtype="float32")
    net = SpeechDetector()(torch.from_numpy(wav), rate).seconds
    args = ["verify", "--model", folder, speech, speech, "--threshold", "0.5"]
    code, _, err = run_cli([*args, "--min-speech-seconds", net + 0.05])
    assert code == 1 and "net speech" in err
    code, out, _ = run_cli([*args, "--min-speech-seconds", net - 0.05])
    assert code == 0 and "same speaker" in out


def test_speech_wrapped_in_silence_decides_as_the_clean_pair(tmp_path, realspk):
    """10 s of silence before and after one side: trim keeps the score."""
    a, b = real_wavs(2)
    padded = wrapped(b, tmp_path / "padded.wav", 10.0, 10.0)
    scores = {}
    for vad in ("trim", "off"):
        embedder = SpeakerEmbedder.from_folder(recipe_folder(), fast=False, vad=vad)
        ea, eb, ep = (embedder.embed_file(p) for p in (a, b, padded))
        cos = torch.nn.functional.cosine_similarity
        scores[vad] = (float(cos(ea, eb, dim=0)), float(cos(ea, ep, dim=0)))
    clean, padded_score = scores["trim"]
    assert abs(clean - padded_score) < 0.02, scores
    # Without trimming the silence moves the score: the check above has teeth.
    assert abs(scores["off"][0] - scores["off"][1]) > 5 * abs(clean - padded_score)


def test_embed_keeps_speech_and_lists_refused_files(tmp_path, run_cli, realspk):
    folder = recipe_folder()
    inputs = tmp_path / "in"
    inputs.mkdir()
    speech = real_wavs(2)
    for i, path in enumerate(speech):
        (inputs / f"speech{i}.wav").write_bytes(path.read_bytes())
    for kind in ("zero", "tone_440"):
        write(inputs / f"{kind}.wav", non_speech()[kind])
    write(inputs / "short.wav", soundfile.read(speech[0], dtype="float32")[0][:8000])
    out = tmp_path / "emb.npz"
    code, _, err = run_cli(["embed", "--model", folder, inputs, "--out", out])
    assert code == 1
    assert sorted(Path(k).name for k in np.load(out)) == ["speech0.wav", "speech1.wav"]
    report = Path(f"{out}.errors.txt").read_text().splitlines()
    refused = {Path(line.split("\t")[0]).name: line for line in report}
    assert set(refused) == {"zero.wav", "tone_440.wav", "short.wav"}
    assert all("of net speech" in line for line in refused.values())
    assert "3 of 5 file(s) could not be embedded" in err


def test_score_leaves_out_trials_with_too_little_speech(tmp_path, run_cli, realspk):
    folder = recipe_folder()
    root = tmp_path / "corpus"
    (root / "wav").mkdir(parents=True)
    files = real_wavs(4)
    names = []
    for i, path in enumerate(files):
        name = f"s{i}.wav"
        (root / "wav" / name).write_bytes(path.read_bytes())
        names.append(name)
    write(root / "wav" / "silence.wav", np.zeros(3 * RATE))
    trials = tmp_path / "trials.txt"
    trials.write_text(
        f"1 {names[0]} {names[0]}\n0 {names[0]} {names[1]}\n"
        f"1 {names[2]} {names[2]}\n0 {names[2]} {names[3]}\n"
        f"1 silence.wav {names[1]}\n0 {names[3]} silence.wav\n"
    )
    code, out, err = run_cli(
        ["score", "--model", folder, "--trials", trials, "--data-root", root]
    )
    assert code == 0, err
    assert "(2 left out: a side with too little speech) on 4 trials" in out
    assert "1 of 5 recording(s) left out: too little speech" in err


def test_out_of_range_quality_is_clamped_with_a_notice(caplog):
    cal = Calibration(
        5.0, -1.0, (1.0, 1.0), ("log_dur_min", "log_dur_max"), {},
        ((0.5, 1.5), (1.0, 2.0)),
    )  # fmt: skip
    inside = cal.llr([0.3], np.array([[1.0, 1.5]]))
    with caplog.at_level("WARNING"):
        far = cal.llr([0.3, 0.3], np.array([[4.0, 6.0], [1.0, 1.5]]))
    assert far[0] == pytest.approx(5.0 * 0.3 - 1.0 + 1.5 + 2.0)  # the bounds
    assert far[1] == pytest.approx(inside[0])
    assert "1 of 2 trial(s) have quality measures outside" in caplog.text
    assert "log_dur_min [0.5, 1.5]" in caplog.text
    # The ranges survive the file.
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.quality_ranges == cal.quality_ranges


def test_fitted_calibration_stores_its_quality_ranges():
    from speechbrain_eres2net.evaluation.calibration import fit_calibration

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300), np.zeros(300)]
    scores = labels + rng.normal(size=600)
    quality = rng.uniform(0.2, 3.0, size=(600, 2))
    cal = fit_calibration(scores, labels, quality, ("log_dur_min", "log_dur_max"))
    assert cal.quality_ranges == tuple(
        (float(lo), float(hi)) for lo, hi in zip(quality.min(0), quality.max(0))
    )


def test_short_file_is_one_forward_pass_as_before(tmp_path, realspk):
    """Below window_seconds, vad off: the embedding of the whole waveform."""
    embedder = SpeakerEmbedder.from_folder(recipe_folder(), fast=False, vad="off")
    path = real_wavs(1)[0]
    wav = torch.from_numpy(soundfile.read(path, dtype="float32")[0])
    expected = embedder.embed_batch([wav])[0]
    got, speech = embedder.embed_recording(path)
    assert torch.equal(got, expected)
    assert speech.seconds == speech.duration == wav.shape[0] / RATE


def test_long_recording_is_the_mean_of_its_windows(tmp_path, realspk):
    """Windowed by hand: each window embedded alone, mean direction x mean norm."""
    speech = [soundfile.read(p, dtype="float32")[0] for p in real_wavs(4)]
    wav = np.concatenate(speech)
    path = write(tmp_path / "long.wav", wav)
    window = 2.0
    embedder = SpeakerEmbedder.from_folder(
        recipe_folder(), fast=False, vad="off", window_seconds=window
    )
    got, found = embedder.embed_recording(path)
    n = int(window * RATE)
    x = torch.from_numpy(wav)
    starts = list(range(0, x.shape[0] - n + 1, n))
    if starts[-1] + n < x.shape[0]:
        starts.append(x.shape[0] - n)
    embs = torch.stack([embedder.embed_batch([x[s : s + n]])[0] for s in starts])
    direction = torch.nn.functional.normalize(embs, dim=1).sum(0)
    expected = torch.nn.functional.normalize(direction, dim=0) * embs.norm(dim=1).mean()
    assert torch.allclose(got, expected, atol=1e-4)
    assert found.duration == pytest.approx(wav.size / RATE)


def test_long_silence_with_little_speech_is_refused_at_the_end(tmp_path, realspk):
    speech = soundfile.read(real_wavs(1)[0], dtype="float32")[0][: RATE // 2]
    wav = np.concatenate([np.zeros(70 * RATE, np.float32), speech])
    path = write(tmp_path / "mostly_silence.wav", wav)
    embedder = SpeakerEmbedder.from_folder(recipe_folder(), fast=False)
    with pytest.raises(NotEnoughSpeechError, match="mostly_silence.wav: 0.[0-9]+ s"):
        embedder.embed_recording(path)


HOUR_SCRIPT = textwrap.dedent(
    """
    import resource, sys, json
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
    embedder = SpeakerEmbedder.from_folder(sys.argv[1], fast=False)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    emb, speech = embedder.embed_recording(sys.argv[2])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"added_mb": (peak - base) / 1024, "speech": speech.seconds,
                      "duration": speech.duration,
                      "finite": bool(emb.isfinite().all())}))
    """
)


def write_long(path: Path, minutes: float, speech: np.ndarray) -> Path:
    """Speech every 30 s in near-silence, written block by block."""
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", RATE, 1, "PCM_16") as f:
        for _ in range(int(minutes * 2)):
            gap = rng.normal(size=30 * RATE - speech.size).astype(np.float32) * 1e-4
            f.write(np.concatenate([speech, gap]))
    return path


def test_an_hour_long_file_embeds_in_bounded_memory(tmp_path, realspk):
    """Memory the embedding adds: an hour costs about what six minutes cost.

    Six minutes hold 12 bursts of speech, more than one 60 s window, so both
    files reach the window's peak; a whole-file read of the hour would add
    >= 230 MB (float32) on its own.
    """
    speech = np.concatenate(
        [soundfile.read(p, dtype="float32")[0] for p in real_wavs(4)]
    )
    results = {}
    for minutes in (6, 60):
        path = write_long(tmp_path / f"{minutes}.wav", minutes, speech)
        run = subprocess.run(
            [sys.executable, "-c", HOUR_SCRIPT, str(recipe_folder()), str(path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        results[minutes] = json.loads(run.stdout.strip().splitlines()[-1])
        path.unlink()
    hour, short = results[60], results[6]
    assert hour["finite"] and hour["duration"] == pytest.approx(3600, abs=1)
    # The speech of all 120 bursts was found, and none of the silence.
    burst = SpeechDetector()(torch.from_numpy(speech), RATE).seconds
    assert 0.9 * 120 * burst <= hour["speech"] <= 1.1 * 120 * burst
    # Measured 317 vs 196 MB and 101.7 vs 42.7 MB on two runs: allocator and
    # kernel caches grow by tens of MB over 60 windows (peak RSS is within
    # 1.2x: benchmarks/results_robustness.json), while one forward pass over
    # the hour's 11 min of speech would add GBs.
    assert hour["added_mb"] <= 2.0 * short["added_mb"] + 64, results


def test_speech_dataclass_round_trip():
    speech = Speech.whole(16000, RATE)
    assert speech.seconds == speech.duration == 1.0
    assert Speech.whole(0, RATE).segments == ()
