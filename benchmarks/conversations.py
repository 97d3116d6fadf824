"""Simulated multi-speaker conversations from realspk, with an honest reference.

2-5 realspk dev speakers take turns of 1-3 utterances 0.1-0.4 s apart; the next
turn goes to another speaker after a pause (lognormal, median 0.6 s, clipped to
0.15-2.5 s), timed from speech to speech as files carry their own silences.
realspk has ~30 s of speech per speaker: used utterances come again reshuffled
at a random gain within +-3 dB (so long recordings repeat). Kinds, in turn:
``clean``; ``overlap``, where turns start 0.3-1.5 s before the previous speech
ends until 5-10 % of the speech overlaps; ``noisy``, with 2-4 pauses of 8-12 s
filled with noise (white plus brown, loudness wandering over 12 dB) and
stationary noise 15-25 dB under the speech throughout. Signals are summed in
float32, scaled to a peak of 0.9 only if they would clip, and written (16 kHz
mono 16-bit) 30 s at a time.

Reference: the speech of each placed utterance, found once per file on the clean
source by Silero VAD (``SpeechDetector``, no padding, pauses under 0.3 s
bridged) and moved to where it is placed; a speaker's segments less than 0.3 s
apart merge, speakers overlap where they do, times are rounded to the ms.
Limits: boundaries are a VAD's on 32 ms chunks (score with a small collar),
pauses under 0.3 s count as speech, noise gaps hold no reference speech, at most
two speakers overlap, one channel per speaker.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
from scipy.signal import lfilter

from speechbrain_eres2net.dataio.vad import SpeechDetector

from .measure import REALSPK, dev_speakers

RATE = 16000
KINDS = ("clean", "overlap", "noisy")
OVERLAP = (0.05, 0.10)  # share of speech overlapped in "overlap" conversations
MERGE = 0.3  # seconds: closer segments of one speaker are one segment
BLOCK = 30 * RATE  # samples mixed at a time: bounds memory for hour-long files
BROWN = 0.995  # pole of the leaky integrator that turns white noise brown
# threshold 0.5, bursts < 0.25 s dropped, pauses < 0.3 s bridged, no padding;
# pinned, so that the reference does not follow the package's VAD defaults
_detector = functools.cache(lambda: SpeechDetector(0.5, 0.25, 0.3, 0.0))


@dataclass(frozen=True)
class Conversation:
    """A simulated recording and its reference (by start; speakers may overlap)."""

    name: str  # c<i>_<n>spk_<kind> or meeting_<m>min_<n>spk: the RTTM's uri
    path: Path  # the 16 kHz mono 16-bit wav
    reference: tuple[tuple[float, float, str], ...]  # (start s, end s, speaker)
    speakers: tuple[str, ...]  # the realspk speaker ids present, sorted
    duration: float  # seconds
    kind: str  # "clean", "overlap" or "noisy"
    overlap_share: float  # time two or more speak / time anyone speaks


@functools.cache
def _utterance(rel: str) -> tuple:
    """(speech segments in s, frames, speech power) of a realspk dev file."""
    audio, _ = soundfile.read(REALSPK / "wav" / rel, dtype="float32")
    spans = _detector()(torch.from_numpy(audio), RATE).segments
    power = np.mean(np.concatenate([audio[s:e] for s, e in spans]) ** 2) if spans else 0
    return tuple((s / RATE, e / RATE) for s, e in spans), len(audio), float(power)


def _voice(rng, rels: list[str]):
    """A speaker's (utterance, gain): shuffled rounds, +-3 dB after the first."""
    rels = [rel for rel in rels if _utterance(rel)[0]]  # silent: audio, no reference
    for again in itertools.count():
        for i in rng.permutation(len(rels)):
            yield rels[i], 10 ** (rng.uniform(-3, 3) / 20) if again else 1.0


def _turn(rng, voice, speaker: str, utterances: int) -> tuple:
    """(speaker, [(rel, gain, file start)], speech, span) from its first speech."""
    utts, segs, cursor = [], [], 0.0
    for k in range(utterances):
        rel, gain = next(voice)
        speech = _utterance(rel)[0]
        offset = cursor + (rng.uniform(0.1, 0.4) if k else 0.0) - speech[0][0]
        utts.append((rel, gain, offset))
        segs += [(offset + s, offset + e) for s, e in speech]
        cursor = offset + speech[-1][1]
    return speaker, utts, segs, cursor


def _reference(turns: list, onsets: list[float]) -> tuple[tuple, float]:
    """The reference, and the time two or more speak / time anyone speaks."""
    segs = sorted((t[0], o + s, o + e) for t, o in zip(turns, onsets) for s, e in t[2])
    merged: list[list] = []
    for speaker, start, end in segs:
        if merged and merged[-1][2] == speaker and start - merged[-1][1] < MERGE:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, speaker])
    ms = sorted((round(s * 1e3), round(e * 1e3), who) for s, e, who in merged)
    active = np.zeros(max((e for _, e, _ in ms), default=0), np.int8)
    for start, end, _ in ms:
        active[start:end] += 1
    share = float((active >= 2).sum() / max((active >= 1).sum(), 1))
    return tuple((s / 1e3, e / 1e3, who) for s, e, who in ms), share


def _plan(rng, speakers: list[str], target: float, kind: str, gap_rate: float):
    """Turns, the times of their first speech, the turns after a noise gap."""
    voices = {s: _voice(rng, dev_speakers()[s]) for s in speakers}
    pending = sorted(rng.uniform(0.1, 0.9, rng.integers(2, 5)) * target)
    pending = pending if kind == "noisy" else []  # when noise gaps are due
    aim = rng.uniform(0.06, 0.09)  # inside OVERLAP, away from its edges
    turns, onsets, gaps, unheard = [], [], [], list(speakers)
    end, overlap, speaker = 0.0, kind == "overlap", None  # end: of the last speech

    def share() -> float:
        return _reference(turns, onsets)[1]

    while end < target or unheard or pending or overlap and share() < OVERLAP[0]:
        # every speaker present speaks before the end, on a one-utterance turn
        tight = unheard and target - end - 10 * len(pending) < 8 * len(unheard)
        choices = unheard if tight else [s for s in speakers if s != speaker]
        speaker = choices[rng.integers(len(choices))]
        unheard = [s for s in unheard if s != speaker]
        size = 1 if tight else int(rng.integers(1, 4))
        turns.append(_turn(rng, voices[speaker], speaker, size))
        if len(turns) == 1:  # the first file starts 0.2-1 s into the recording
            onsets.append(rng.uniform(0.2, 1.0) - turns[0][1][0][2])
        elif (pending and pending[0] <= end) or rng.random() < gap_rate:
            pending = pending[1:]
            gaps.append(len(onsets))
            onsets.append(end + rng.uniform(8.0, 12.0))
        else:
            onsets.append(end + np.clip(rng.lognormal(np.log(0.6), 0.5), 0.15, 2.5))
            # by at most half of either turn: two speakers at most overlap, and
            # nobody overlaps their own previous turn
            most = min(1.5, turns[-2][3] / 2, turns[-1][3] / 2)
            if overlap and most >= 0.3 and share() < aim:
                for onset in (end - rng.uniform(0.3, most), end - 0.3, onsets[-1]):
                    onsets[-1] = onset
                    if share() <= OVERLAP[1]:
                        break
        end = onsets[-1] + turns[-1][3]
    return turns, onsets, gaps


@functools.lru_cache(maxsize=4)
def _noise(seed: int, frames: int, wander: bool) -> np.ndarray:
    """Unit-power white plus brown noise, stationary or its loudness wandering."""
    rng = np.random.default_rng(seed)
    white, x = rng.uniform(0.2, 0.8), rng.normal(size=frames) * np.sqrt(1 - BROWN**2)
    # a random initial state: stationary (unit power) from the first sample
    brown = lfilter([1], [1, -BROWN], x, zi=[BROWN * rng.normal()])[0]
    noise = np.sqrt(white) * rng.normal(size=frames) + np.sqrt(1 - white) * brown
    if wander:
        knots = np.arange(0, frames + RATE // 4, RATE // 4)
        level = np.interp(np.arange(frames), knots, rng.uniform(-12, 0, len(knots)))
        ramp = np.minimum(np.arange(frames), np.arange(frames)[::-1]) / (0.05 * RATE)
        noise *= 10 ** (level / 20) * np.minimum(ramp, 1)
    return noise.astype(np.float32)


def _blocks(items: list, frames: int):
    """The mix, BLOCK samples at a time, of (start, frames, file or noise, gain)."""
    for first in range(0, frames, BLOCK):
        block = np.zeros(min(BLOCK, frames - first), np.float32)
        for start, length, source, gain in items:
            a, b = max(first - start, 0), min(first + len(block) - start, length)
            if a < b and isinstance(source, tuple):
                piece = _noise(source[0], length, source[1])[a:b]
            elif a < b:
                path = REALSPK / "wav" / source
                piece = soundfile.read(path, start=a, stop=b, dtype="float32")[0]
            if a < b:
                block[start + a - first : start + b - first] += gain * piece
        yield block


def _conversation(folder, name, rng, speakers, target, kind, gap_rate=0.0):
    turns, onsets, gaps = _plan(rng, speakers, target, kind, gap_rate)
    items = []
    for (_, utts, _, _), onset in zip(turns, onsets):
        for rel, gain, offset in utts:
            start = round((onset + offset) * RATE)
            items.append((start, _utterance(rel)[1], rel, gain))
    speech_rms = np.sqrt(np.mean([g**2 * _utterance(r)[2] for _, _, r, g in items]))
    for i in gaps:  # noise 5-15 dB under the speech fills the silence
        start = round((onsets[i - 1] + turns[i - 1][3]) * RATE)
        seed, gain = (int(rng.integers(2**32)), True), 10 ** rng.uniform(-0.75, -0.25)
        items.append((start, round(onsets[i] * RATE) - start, seed, speech_rms * gain))
    frames = max(start + length for start, length, _, _ in items) + RATE // 2
    if kind == "noisy":  # stationary noise 15-25 dB under the speech throughout
        seed, gain = (int(rng.integers(2**32)), False), 10 ** rng.uniform(-1.25, -0.75)
        items.append((0, frames, seed, speech_rms * gain))
    peak = max(np.abs(block).max() for block in _blocks(items, frames))
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / f"{name}.wav"
    with soundfile.SoundFile(path, "w", RATE, 1, "PCM_16") as out:
        for block in _blocks(items, frames):
            out.write(block * (0.9 / peak if peak > 0.9 else 1.0))
    (reference, share), speakers = _reference(turns, onsets), tuple(sorted(speakers))
    return Conversation(name, path, reference, speakers, frames / RATE, kind, share)


def build_conversations(
    folder: Path,
    count: int = 24,
    seed: int = 0,
    minutes: tuple[float, float] = (1.0, 4.0),
) -> list[Conversation]:
    """Writes ``count`` conversations into ``folder``, the same on every run.

    Conversation ``i`` has ``2 + i % 4`` realspk dev speakers and kind
    ``KINDS[i % 3]``; it ends at the first turn past a length drawn uniformly
    in ``minutes`` once every speaker has spoken, every noise gap is in and 5 %
    of an overlap kind's speech overlaps. Needs realspk (``measure.REALSPK``).

    Arguments
    ---------
    folder : Path
        Where the ``<name>.wav`` files are written.
    count, seed : int
        How many; the seed of ``numpy.random.default_rng``.
    minutes : tuple of float
        Range of the target lengths.
    """
    rng, names = np.random.default_rng(seed), list(dev_speakers())
    conversations = []
    for i in range(count):
        n, kind = 2 + i % 4, KINDS[i % 3]
        speakers = [names[j] for j in rng.choice(len(names), n, replace=False)]
        target = 60 * rng.uniform(*minutes)
        name = f"c{i:02d}_{n}spk_{kind}"
        conversations.append(_conversation(folder, name, rng, speakers, target, kind))
    return conversations


def build_meeting(
    folder: Path, minutes: float, seed: int = 0, speakers: int = 4
) -> Conversation:
    """One recording of ``speakers`` talking for ``minutes`` (then a turn).

    Clean turns (kind ``clean``), 2 % of the turn changes being an 8-12 s
    pause filled with noise; written 30 s at a time (bounded memory).

    Arguments
    ---------
    folder : Path
        Where ``meeting_<minutes>min_<speakers>spk.wav`` is written.
    minutes : float
        Target length.
    seed, speakers : int
        The seed of ``numpy.random.default_rng``; realspk dev speakers.
    """
    rng, names = np.random.default_rng(seed), list(dev_speakers())
    chosen = [names[j] for j in rng.choice(len(names), speakers, replace=False)]
    name = f"meeting_{minutes:g}min_{speakers}spk"
    return _conversation(folder, name, rng, chosen, 60 * minutes, "clean", 0.02)


def write_reference_rttm(conversation: Conversation, path: Path) -> None:
    """Writes the reference as NIST RTTM, the conversation's name as uri.

    Example
    -------
    >>> import tempfile
    >>> c = Conversation("demo", Path("demo.wav"), ((0.5, 2.0, "a"),), ("a",),
    ...     2.5, "clean", 0.0)
    >>> rttm = Path(tempfile.mkdtemp()) / "demo.rttm"
    >>> write_reference_rttm(c, rttm)
    >>> rttm.read_text()
    'SPEAKER demo 1 0.500 1.500 <NA> <NA> a <NA> <NA>\\n'
    """
    row = "SPEAKER {} 1 {:.3f} {:.3f} <NA> <NA> {} <NA> <NA>\n".format
    rows = [row(conversation.name, s, e - s, w) for s, e, w in conversation.reference]
    Path(path).write_text("".join(rows))


def reference_annotation(conversation: Conversation):
    """The reference as a ``pyannote.core.Annotation``, the name as uri.

    Example
    -------
    >>> c = Conversation("demo", Path("demo.wav"),
    ...     ((0.5, 2.0, "a"), (1.5, 3.0, "b")), ("a", "b"), 3.5, "overlap", 0.2)
    >>> annotation = reference_annotation(c)
    >>> annotation.uri, annotation.labels(), annotation.label_duration("b")
    ('demo', ['a', 'b'], 1.5)
    """
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=conversation.name)
    for track, (start, end, speaker) in enumerate(conversation.reference):
        annotation[Segment(start, end), track] = speaker
    return annotation
