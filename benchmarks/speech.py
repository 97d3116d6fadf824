"""Speech handling that costs no accuracy: the benchmark that chose the default.

Section ``speech`` of ``python -m benchmarks`` (needs realspk and model
folders trained on it, ``--speech-models``). For every model and every
candidate speech handling (:data:`CANDIDATES`, applied to both sides of a
trial, as the commands apply it), the realspk dev trials are scored

* clean;
* with the test side wrapped in 5-20 s of silence, and of -35 dBFS noise;
* with the test side cut to its first 1 s and 2 s of net speech (nothing
  refused there: ``min_speech_seconds`` 0);

and each row gives EER, minDCF(0.01), actDCF(0.01) and Cllr (LLRs of the
folder's ``calibration.json``). **The reference of every row is the same
model with speech handling off on the clean trials**, never a row of the
candidate itself: a candidate that trims clean speech shows its cost.
Targets (issue 24): clean EER <= reference + 0.1 point; wrapped EER <=
reference + 0.5 point. ``--speech-trained-alike`` adds models trained with a
trimming handling (the recipe's data pipeline applying it), scored with the
handling their folder records, against the reference of the model of the
same name before " trained" (e.g. "ERes2Net trained trim" -> "ERes2Net").
The refusal rows run the packaged default on the 13 kinds of synthetic
non-speech (target 100 % refused) and on every realspk recording (target
<= 0.8 %).

Everything runs the eager fp32 model (``fast=False``), the same on every CPU.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from .common import REALSPK, Row, run_parts, set_threads
from .robustness import (
    cut_test_side,
    embed_side,
    non_speech_rows,
    read_dev_trials,
    real_speech_rows,
    score_trials,
    wrap_test_side,
)

SECTION = "speech"
CLEAN_TARGET_POINTS = 0.1
WRAPPED_TARGET_POINTS = 0.5
REFUSED_REAL_TARGET = 0.8
CUT_SECONDS = (1.0, 2.0)

# Candidate speech handlings: overrides of the packaged settings. "trim all"
# is the default before this benchmark (every pause Silero hears is cut).
CANDIDATES: dict[str, dict] = {
    "off": {"vad": "off"},
    "check (refuse, embed whole)": {"vad": "check"},
    "trim all pauses (old default)": {
        "vad": "trim",
        "trim_min_pause_seconds": 0.0,
        "trim_pad_seconds": 0.0,
    },
    "trim edges only, pad 0.1 s": {
        "vad": "trim",
        "trim_min_pause_seconds": math.inf,
        "trim_pad_seconds": 0.1,
    },
    "trim edges only, pad 0.3 s": {
        "vad": "trim",
        "trim_min_pause_seconds": math.inf,
        "trim_pad_seconds": 0.3,
    },
    "trim pauses >= 0.5 s, pad 0.2 s": {
        "vad": "trim",
        "trim_min_pause_seconds": 0.5,
        "trim_pad_seconds": 0.2,
    },
    "trim pauses >= 1 s, pad 0.2 s": {
        "vad": "trim",
        "trim_min_pause_seconds": 1.0,
        "trim_pad_seconds": 0.2,
    },
    "trim pauses >= 2 s, pad 0.2 s": {
        "vad": "trim",
        "trim_min_pause_seconds": 2.0,
        "trim_pad_seconds": 0.2,
    },
    "trim pauses >= 1 s, pad 0.5 s": {
        "vad": "trim",
        "trim_min_pause_seconds": 1.0,
        "trim_pad_seconds": 0.5,
    },
    "trim pauses >= 1 s, pad 1 s": {
        "vad": "trim",
        "trim_min_pause_seconds": 1.0,
        "trim_pad_seconds": 1.0,
    },
}
CONDITIONS = (
    "clean",
    "test side in 5-20 s of silence",
    "test side in 5-20 s of -35 dBFS noise",
    "test side cut to 1 s of net speech",
    "test side cut to 2 s of net speech",
)


def parse_models(text: Optional[str]) -> dict[str, str]:
    """``"ERes2Net=DIR,ECAPA-TDNN=DIR"`` -> {name: folder}.

    Example
    -------
    >>> parse_models("ERes2Net=/m/a,ECAPA=/m/b")
    {'ERes2Net': '/m/a', 'ECAPA': '/m/b'}
    """
    models = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, folder = item.partition("=")
        if not sep:
            raise ValueError(f"--speech-models expects NAME=FOLDER, got {item!r}")
        models[name.strip()] = folder.strip()
    return models


def condition_files(folder: Path, test: list[str], seed: int) -> dict[str, dict]:
    """The test-side files of every condition (built once for all models)."""
    from speechbrain_eres2net.dataio.vad import SpeechDetector

    clean = {r: REALSPK / "wav" / r for r in sorted(set(test))}
    files = {
        CONDITIONS[0]: clean,
        CONDITIONS[1]: wrap_test_side(test, folder, "silence", seed),
        CONDITIONS[2]: wrap_test_side(test, folder, "noise", seed),
    }
    detector = SpeechDetector()
    for seconds, name in zip(CUT_SECONDS, CONDITIONS[3:]):
        files[name] = cut_test_side(test, folder, detector, seconds)[0]
    return files


def score_model(
    name: str,
    model: str,
    candidates: Mapping[str, dict],
    files: Mapping[str, dict],
    trials,
    reference: Optional[dict] = None,
) -> tuple[list[Row], dict]:
    """Rows of one model: every candidate under every condition vs the
    reference (this model, vad off, clean trials, unless ``reference``);
    and that reference's result."""
    from speechbrain_eres2net.evaluation.decisions import folder_calibration
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    calibration = folder_calibration(model)
    _, enrol_rels, _ = trials
    enrol_files = {r: REALSPK / "wav" / r for r in sorted(set(enrol_rels))}
    rows = []
    off_enrol = None
    if reference is None:
        off = SpeakerEmbedder.from_folder(model, fast=False, vad="off")
        off_enrol = embed_side(off, enrol_files)
        reference = score_trials(
            trials, off_enrol, embed_side(off, files[CONDITIONS[0]]), calibration
        )
        rows.append(_row(name, "off, clean (reference)", reference, reference, None))
    for candidate, options in candidates.items():
        embedder = SpeakerEmbedder.from_folder(model, fast=False, **options)
        short = SpeakerEmbedder.from_folder(
            model, fast=False, **{**options, "min_speech_seconds": 0.0}
        )
        enrol = embed_side(embedder, enrol_files)
        for condition in CONDITIONS:
            cut = condition.startswith("test side cut")
            test = embed_side(short if cut else embedder, files[condition])
            result = score_trials(trials, enrol, test, calibration)
            if condition == CONDITIONS[0]:
                target = CLEAN_TARGET_POINTS
            elif not cut:
                target = WRAPPED_TARGET_POINTS
            else:
                target = None
            rows.append(
                _row(name, f"{candidate}, {condition}", result, reference, target)
            )
            if condition == CONDITIONS[0] and off_enrol is not None:
                rows.append(agreement_row(name, candidate, enrol, off_enrol))
    return rows, reference


def agreement_row(model: str, candidate: str, ours, off) -> Row:
    """How far a candidate moves clean recordings' embeddings from vad off:
    the 1st percentile of the cosine over the enrolment-side recordings
    (what tests/test_speech_handling.py holds the default to)."""
    import numpy as np

    names = sorted(set(ours.embeddings) & set(off.embeddings))
    cosines = np.array(
        [
            float(
                np.dot(ours.embeddings[n], off.embeddings[n])
                / np.linalg.norm(ours.embeddings[n])
                / np.linalg.norm(off.embeddings[n])
            )
            for n in names
        ]
    )
    return Row(
        SECTION,
        f"{model}: {candidate}, clean: cosine to vad off, 1st percentile",
        float(np.percentile(cosines, 1)),
        unit="cosine",
        note=f"median {np.median(cosines):.4f}, least {cosines.min():.4f} over "
        f"{len(names)} clean recordings",
    )


def _row(model: str, what: str, result: dict, reference: dict, target) -> Row:
    """EER points above the reference, with minDCF, actDCF and Cllr."""

    def fmt(value, spec):
        return "n/a" if value is None else format(value, spec)

    note = (
        f"EER {result['eer']:.2f} % (reference {reference['eer']:.2f} %), "
        f"minDCF(0.01) {result['min_dcf']:.4f} ({reference['min_dcf']:.4f}), "
        f"actDCF(0.01) {fmt(result['act_dcf'], '.4f')} "
        f"({fmt(reference['act_dcf'], '.4f')}), Cllr {fmt(result['cllr'], '.3f')} "
        f"({fmt(reference['cllr'], '.3f')}); {result['n_trials']} trials"
    )
    if result["left_out"]:
        note += f", {result['left_out']} left out (a side refused)"
    return Row(
        SECTION,
        f"{model}: {what}",
        result["eer"] - reference["eer"],
        reference["eer"],
        "EER points vs off on clean",
        target=target,
        higher_is_better=False,
        absolute=True,
        note=note,
    )


def refusal_rows(folder: Path, model: str, per_kind: int, seed: int) -> list[Row]:
    """The packaged default on synthetic non-speech and on real recordings."""
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    embedder = SpeakerEmbedder.from_folder(model, fast=False)
    rows = [
        dataclasses.replace(r, section=SECTION)
        for r in non_speech_rows(embedder, folder, per_kind, seed)
        if r.name.startswith("detector Silero")
    ]
    real = real_speech_rows(embedder, None)[0]
    return rows + [
        dataclasses.replace(real, section=SECTION, target=REFUSED_REAL_TARGET)
    ]


def bench_speech(
    models: Optional[str],
    trained_alike: Optional[str] = None,
    quick: bool = False,
    threads: int = 2,
    seed: int = 0,
    only: Optional[str] = None,
) -> list[Row]:
    """The ``speech`` section: every candidate on every model (see module doc);
    ``only``: ';'-separated candidate names to run (default: all)."""
    models_by_name = parse_models(models)
    alike = parse_models(trained_alike)
    if not models_by_name:
        return [
            Row(SECTION, "speech handling", None, note="skipped: no --speech-models")
        ]
    if not (REALSPK / "dev_trials.txt").is_file():
        return [
            Row(SECTION, "speech handling", None, note=f"skipped: {REALSPK} absent")
        ]
    set_threads(threads)
    trials = read_dev_trials(12 if quick else None)
    quick_names = ("off", "trim all pauses (old default)")
    candidates = {k: CANDIDATES[k] for k in quick_names} if quick else CANDIDATES
    if only:
        names = [n.strip() for n in only.split(";") if n.strip()]
        unknown = sorted(set(names) - set(CANDIDATES))
        if unknown:
            raise ValueError(f"--speech-candidates: unknown {unknown}")
        candidates = {k: CANDIDATES[k] for k in names}
    references: dict[str, dict] = {}
    state: dict[str, dict] = {}

    def files(folder: Path) -> dict:
        if "files" not in state:
            state["files"] = condition_files(folder, trials[2], seed)
        return state["files"]

    def run_model(name: str, model: str, folder: Path) -> list[Row]:
        rows, references[name] = score_model(
            name, model, candidates, files(folder), trials
        )
        return rows

    def run_alike(name: str, model: str, folder: Path) -> list[Row]:
        # Scored with the handling the folder records it was trained with;
        # the reference stays the model trained without it, vad off.
        from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

        trained = SpeakerEmbedder.from_folder(model, fast=False).speech
        return score_model(
            name,
            model,
            {f"as trained, {trained.describe()}": {}},
            files(folder),
            trials,
            reference=references.get(name.split(" trained")[0]),
        )[0]

    parts = [
        (f"model {name}", lambda d, n=name, m=m: run_model(n, m, d))
        for name, m in models_by_name.items()
    ]
    parts += [
        (f"trained alike {name}", lambda d, n=name, m=m: run_alike(n, m, d))
        for name, m in alike.items()
    ]
    first = next(iter(models_by_name.values()))
    parts.append(
        (
            "refusals",
            lambda d: refusal_rows(d, first, 1 if quick else 5, seed),
        )
    )
    return run_parts(SECTION, parts)
