"""Long recordings: EER of windowed against whole-recording embeddings.

``python -m benchmarks.long_recordings MODEL [--window-seconds 4] [--rounds 3]``

realspk's dev recordings are 2-8 s long, so long recordings are made by
joining the recordings of one speaker: each round shuffles every dev
speaker's recordings (seeded) and joins them into ``recordings_per_speaker``
recordings of ``utterances_per_recording`` each; trials pair every two
recordings of a round (targets: one speaker's). Each recording is embedded
three ways with the model folder's own speech handling:

* ``whole``: one forward pass over the recording (``window_seconds`` longer
  than any recording);
* ``windowed``: :meth:`SpeakerEmbedder.embed_stream`, what every command
  runs on recordings longer than ``window_seconds``: sample windows of the
  kept audio, each with its own features, mean direction x mean norm;
* ``frame_windows``: what the deprecated ``embed_long`` did before it was
  folded into that implementation: features of the whole kept audio, frame
  windows of the same length, mean of the unit window embeddings.

The EER of each (cosine scores) is what chooses how long recordings are
embedded (issue 26, item 1); ``windowed`` is the implementation today.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from speechbrain_eres2net.evaluation.metrics import compute_eer
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.inference.streaming import window_starts

from .measure import REALSPK

METHODS = ("whole", "windowed", "frame_windows")
FRAMES_PER_SECOND = 100  # the Kaldi fbank's 10 ms hop


def dev_recordings(data: Path) -> dict[str, list[Path]]:
    """Speaker -> their dev recordings (sorted), from ``dev_list.txt``."""
    speakers: dict[str, list[Path]] = defaultdict(list)
    for line in (data / "dev_list.txt").read_text().splitlines():
        if line.strip():
            speaker, rel = line.split()
            speakers[speaker].append(data / "wav" / rel)
    return {s: sorted(paths) for s, paths in sorted(speakers.items())}


def join_recordings(
    data: Path,
    folder: Path,
    utterances_per_recording: int,
    recordings_per_speaker: int,
    rounds: int,
    seed: int,
    max_speakers: Optional[int] = None,
) -> list[tuple[int, str, Path]]:
    """Writes the joined recordings; (round, speaker, path) of each."""
    speakers = dev_recordings(data)
    if max_speakers:
        speakers = dict(list(speakers.items())[:max_speakers])
    rng = random.Random(seed)
    made = []
    need = utterances_per_recording * recordings_per_speaker
    for r in range(rounds):
        for speaker, paths in speakers.items():
            if len(paths) < need:
                continue
            chosen = rng.sample(paths, need)
            for k in range(recordings_per_speaker):
                part = chosen[k * utterances_per_recording :][:utterances_per_recording]
                audio = [soundfile.read(p, dtype="float32") for p in part]
                rate = audio[0][1]
                path = folder / f"r{r}_{speaker}_{k}.wav"
                soundfile.write(path, np.concatenate([a for a, _ in audio]), rate)
                made.append((r, speaker, path))
    return made


@torch.no_grad()
def frame_window_embedding(
    embedder: SpeakerEmbedder, path: Path, window_seconds: float
) -> torch.Tensor:
    """The former ``embed_long``: frame windows of the whole kept audio's
    features, mean of the unit window embeddings."""
    from speechbrain_eres2net.dataio.audio import read_audio

    wav, _ = embedder.speech_of(path, read_audio(path, embedder.sample_rate))
    feats = embedder._features(wav)
    window = int(window_seconds * FRAMES_PER_SECOND)
    starts = window_starts(feats.shape[0], window, window)
    length = min(window, feats.shape[0])
    units = [
        torch.nn.functional.normalize(
            embedder.embedding_model(feats[s : s + length].unsqueeze(0)).flatten(),
            dim=0,
        )
        for s in starts
    ]
    return torch.stack(units).mean(0)


def long_recording_eer(
    model: str,
    window_seconds: float = 4.0,
    utterances_per_recording: int = 4,
    recordings_per_speaker: int = 2,
    rounds: int = 3,
    seed: int = 0,
    data: Path = REALSPK,
    max_speakers: Optional[int] = None,
) -> dict:
    """EER of each of :data:`METHODS` on long recordings of realspk dev.

    Arguments
    ---------
    model : str
        A model folder (local or Hub id).
    window_seconds : float
        Window of ``windowed`` and ``frame_windows``; recordings are several
        windows long (realspk dev recordings average 3.8 s).
    utterances_per_recording, recordings_per_speaker, rounds, seed : int
        How the recordings are joined (dev speakers have 8 recordings).
    data : Path
        The realspk folder.
    max_speakers : int, optional
        Only the first speakers (smoke tests).

    Returns
    -------
    dict
        ``eer`` per method (fraction), trial counts, recording durations.
    """
    with tempfile.TemporaryDirectory(prefix="long-recordings-") as tmp:
        made = join_recordings(
            data,
            Path(tmp),
            utterances_per_recording,
            recordings_per_speaker,
            rounds,
            seed,
            max_speakers,
        )
        seconds = [soundfile.info(p).duration for _, _, p in made]
        windowed = SpeakerEmbedder.from_folder(model, window_seconds=window_seconds)
        whole = SpeakerEmbedder.from_folder(
            model, window_seconds=max(seconds) + window_seconds
        )
        embeddings = {m: [] for m in METHODS}
        for _, _, path in made:
            embeddings["whole"].append(whole.embed_file(path))
            embeddings["windowed"].append(windowed.embed_file(path))
            embeddings["frame_windows"].append(
                frame_window_embedding(whole, path, window_seconds)
            )
    scores = {m: [] for m in METHODS}
    labels = []
    for i, (round_i, speaker_i, _) in enumerate(made):
        for j in range(i + 1, len(made)):
            round_j, speaker_j, _ = made[j]
            if round_i != round_j:
                continue
            labels.append(int(speaker_i == speaker_j))
            for m in METHODS:
                a, b = embeddings[m][i], embeddings[m][j]
                scores[m].append(float(torch.cosine_similarity(a, b, dim=0)))
    return {
        "model": str(model),
        "window_seconds": window_seconds,
        "recordings": len(made),
        "recording_seconds": [round(min(seconds), 2), round(max(seconds), 2)],
        "mean_windows": float(np.mean(seconds) / window_seconds),
        "target_trials": int(sum(labels)),
        "nontarget_trials": len(labels) - int(sum(labels)),
        "eer": {m: compute_eer(scores[m], labels)[0] for m in METHODS},
    }


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model folder (or Hub id)")
    parser.add_argument("--window-seconds", type=float, default=4.0)
    parser.add_argument("--utterances-per-recording", type=int, default=4)
    parser.add_argument("--recordings-per-speaker", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-speakers", type=int, default=None)
    parser.add_argument("--data", type=Path, default=REALSPK)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    results = long_recording_eer(
        args.model,
        args.window_seconds,
        args.utterances_per_recording,
        args.recordings_per_speaker,
        args.rounds,
        args.seed,
        args.data,
        args.max_speakers,
    )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return results


if __name__ == "__main__":
    main()
