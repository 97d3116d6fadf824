"""A small synthetic multi-speaker corpus for the quickstart (no download).

Each speaker is a source-filter "voice": a glottal pulse train whose pitch
range, vocal-tract length (which scales every formant), spectral tilt,
breathiness, jitter and speaking rate are drawn once per speaker from a
seeded generator. An utterance is a random sequence of vowel-like syllables
with a falling-rising pitch contour, separated by short pauses, through a
per-session channel (gain, a gentle EQ tilt) with a little background noise.
Same-speaker utterances share the voice but not the words, so speaker
identity must be learnt from voice characteristics, as with real speech.

The corpus is written in the VoxCeleb layout ``wav/<spk>/<sess>/<utt>.wav``
with a trial list ``dev_trials.txt`` over held-out speakers, deterministic
for a given seed and generated in a few seconds.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from ..paths import PathLike
from .files import atomic_open, write_text_atomic

# Formants (Hz) of an adult male tract for five vowels (Peterson & Barney);
# a speaker's vocal-tract length scales them all.
VOWEL_FORMANTS = np.array(
    [
        [730, 1090, 2440],  # a
        [270, 2290, 3010],  # i
        [300, 870, 2240],  # u
        [530, 1840, 2480],  # e
        [570, 840, 2410],  # o
    ],
    dtype=float,
)


FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0])


MANIFEST = "synthetic_manifest.json"


TRIALS = "dev_trials.txt"


@dataclass(frozen=True)
class Voice:
    """Characteristics of one synthetic speaker."""

    f0: float  # median pitch, Hz
    f0_range: float  # pitch excursion, octaves
    tract: float  # formant scale (short tract -> high formants)
    tilt: float  # glottal low-pass pole, 0..1 (higher: darker timbre)
    breath: float  # aspiration noise level relative to voicing
    jitter: float  # cycle-to-cycle pitch perturbation
    rate: float  # syllables per second
    formant_bias: tuple[float, float, float]  # per-formant idiosyncrasy


def draw_voice(rng: np.random.Generator) -> Voice:
    """Draws a speaker's voice (male, female or child-like pitch and tract)."""
    kind = rng.integers(3)
    f0 = [rng.uniform(85, 150), rng.uniform(165, 255), rng.uniform(230, 330)][kind]
    tract = [rng.uniform(0.9, 1.05), rng.uniform(1.1, 1.25), rng.uniform(1.25, 1.45)][
        kind
    ]
    return Voice(
        f0=float(f0),
        f0_range=float(rng.uniform(0.1, 0.5)),
        tract=float(tract),
        tilt=float(rng.uniform(0.6, 0.97)),
        breath=float(rng.uniform(0.0, 0.35)),
        jitter=float(rng.uniform(0.002, 0.02)),
        rate=float(rng.uniform(3.0, 6.0)),
        formant_bias=tuple(float(b) for b in rng.uniform(0.9, 1.1, size=3)),
    )


def _resonator(freq: float, bandwidth: float, sample_rate: int) -> tuple:
    """Second-order all-pole resonator with unit gain at DC."""
    radius = np.exp(-np.pi * bandwidth / sample_rate)
    theta = 2 * np.pi * freq / sample_rate
    a = [1.0, -2 * radius * np.cos(theta), radius**2]
    return [sum(a)], a


def _syllable(
    voice: Voice, vowel: int, f0: np.ndarray, rng: np.random.Generator, sr: int
) -> np.ndarray:
    """One voiced syllable with pitch track ``f0`` (Hz per sample)."""
    f0 = f0 * (1 + voice.jitter * rng.standard_normal(f0.shape[0]))
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    source = lfilter([1.0], [1.0, -voice.tilt], pulses)
    source = source + voice.breath * 0.3 * rng.standard_normal(source.shape[0])
    formants = VOWEL_FORMANTS[vowel] * voice.tract * np.array(voice.formant_bias)
    out = source
    for freq, bw in zip(formants, FORMANT_BANDWIDTHS * voice.tract):
        b, a = _resonator(min(freq, 0.45 * sr), bw, sr)
        out = lfilter(b, a, out)
    envelope = np.hanning(out.shape[0]) ** 0.5
    return out * envelope


def synthesize_utterance(
    voice: Voice,
    duration: float,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    channel_tilt: float = 0.0,
    noise_db: float = -45.0,
) -> np.ndarray:
    """A float32 utterance of about ``duration`` seconds in [-1, 1].

    Example
    -------
    >>> voice = draw_voice(np.random.default_rng(0))
    >>> wav = synthesize_utterance(voice, 1.0, np.random.default_rng(1))
    >>> wav.shape, wav.dtype, float(np.abs(wav).max()) <= 1.0
    ((16000,), dtype('float32'), True)
    """
    total = int(duration * sample_rate)
    pieces, length = [], 0
    while length < total:
        syl = int(sample_rate * rng.uniform(0.6, 1.4) / voice.rate)
        t = np.linspace(0, 1, syl)
        # A rise-fall contour spanning part of the speaker's pitch range.
        contour = voice.f0 * 2 ** (
            voice.f0_range * (rng.uniform(-0.5, 0.5) + 0.5 * np.sin(np.pi * t))
        )
        pieces.append(_syllable(voice, rng.integers(5), contour, rng, sample_rate))
        gap = int(sample_rate * rng.uniform(0.02, 0.15))
        pieces.append(np.zeros(gap))
        length += syl + gap
    wav = np.concatenate(pieces)[:total]
    if channel_tilt:
        wav = lfilter([1.0, -channel_tilt], [1.0], wav)
    wav = wav / (np.abs(wav).max() + 1e-9) * rng.uniform(0.3, 0.9)
    wav = wav + 10 ** (noise_db / 20) * rng.standard_normal(total)
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def _write_wav(path: Path, wav: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        sf.write(handle, wav, sample_rate, format="WAV", subtype="PCM_16")


def make_corpus(
    folder: PathLike,
    num_speakers: int = 60,
    num_trial_speakers: int = 12,
    utts_per_speaker: int = 8,
    sessions: int = 2,
    min_duration: float = 2.0,
    max_duration: float = 4.5,
    sample_rate: int = 16000,
    seed: int = 0,
) -> dict[str, str]:
    """Writes the synthetic corpus (idempotent: skips an identical one).

    Speakers ``syn0000..`` are numbered; the last ``num_trial_speakers`` are
    held out for ``dev_trials.txt`` (every same-speaker pair as targets, as
    many random different-speaker pairs as non-targets; paths relative to
    ``wav/``). ``train_list.txt`` lists the utterances of the others.

    Arguments
    ---------
    folder : path
        Corpus root (created).
    num_speakers : int
        Speakers in total.
    num_trial_speakers : int
        Speakers held out for the trial list.
    utts_per_speaker : int
        Utterances per speaker, spread over ``sessions`` sessions.
    sessions : int
        Sessions (channels) per speaker.
    min_duration, max_duration : float
        Utterance length range in seconds.
    sample_rate : int
        Sample rate of the files.
    seed : int
        Seed of everything.

    Returns
    -------
    dict
        ``root``, ``wav`` (folder), ``trials`` and ``train_list`` paths.

    Example
    -------
    >>> import tempfile
    >>> paths = make_corpus(tempfile.mkdtemp(), num_speakers=3,
    ...     num_trial_speakers=2, utts_per_speaker=2, max_duration=2.0)
    >>> sorted(p.name for p in Path(paths["wav"]).iterdir())
    ['syn0000', 'syn0001', 'syn0002']
    >>> open(paths["trials"]).read().splitlines()[0]
    '1 syn0001/sess1/u000.wav syn0001/sess2/u001.wav'
    """
    if not 2 <= num_trial_speakers < num_speakers:
        raise ValueError(
            f"make_corpus: need 2 <= num_trial_speakers ({num_trial_speakers}) "
            f"< num_speakers ({num_speakers})"
        )
    if utts_per_speaker < 2 or min_duration <= 0 or max_duration < min_duration:
        raise ValueError(
            "make_corpus: need utts_per_speaker >= 2 and "
            "0 < min_duration <= max_duration"
        )
    root = Path(folder)
    options = {k: v for k, v in locals().items() if k not in ("folder", "root")}
    paths = {
        "root": str(root),
        "wav": str(root / "wav"),
        "trials": str(root / TRIALS),
        "train_list": str(root / "train_list.txt"),
    }
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == options:
        return paths

    rng = np.random.default_rng(seed)
    voices = [draw_voice(rng) for _ in range(num_speakers)]
    utterances: dict[str, list[str]] = {}
    for index, voice in enumerate(voices):
        spk = f"syn{index:04d}"
        spk_rng = np.random.default_rng([seed, index])
        tilts = spk_rng.uniform(-0.5, 0.5, size=sessions)
        utterances[spk] = []
        for utt in range(utts_per_speaker):
            sess = utt % sessions
            rel = f"{spk}/sess{sess + 1}/u{utt:03d}.wav"
            duration = spk_rng.uniform(min_duration, max_duration)
            wav = synthesize_utterance(
                voice, duration, spk_rng, sample_rate, channel_tilt=tilts[sess]
            )
            _write_wav(root / "wav" / rel, wav, sample_rate)
            utterances[spk].append(rel)

    speakers = sorted(utterances)
    held_out = speakers[-num_trial_speakers:]
    targets = [
        (1, a, b)
        for spk in held_out
        for a, b in itertools.combinations(utterances[spk], 2)
    ]
    pool = [
        (a, b)
        for s, t in itertools.combinations(held_out, 2)
        for a in utterances[s]
        for b in utterances[t]
    ]
    picks = np.random.default_rng(seed + 1).choice(
        len(pool), size=min(len(targets), len(pool)), replace=False
    )
    trials = targets + [(0, *pool[i]) for i in sorted(picks)]
    write_text_atomic(
        paths["trials"], "".join(f"{lab} {a} {b}\n" for lab, a, b in trials)
    )
    train = [
        f"{spk} {rel}\n"
        for spk in speakers[:-num_trial_speakers]
        for rel in utterances[spk]
    ]
    write_text_atomic(paths["train_list"], "".join(train))
    meta = {spk: asdict(v) for spk, v in zip(speakers, voices)}
    write_text_atomic(root / "voices.json", json.dumps(meta, indent=1))
    write_text_atomic(manifest, json.dumps(options))
    return paths
