"""Open-set identification: enroll speakers from several recordings, find them.

Section ``identification`` of ``python -m benchmarks``. Parts 1 and 2 need a
model folder (``--identification-model``) and realspk, part 3 neither. Every
figure comes from the run that prints it:

1. **realspk dev, open set.** Every dev recording (30 speakers x 8) is
   embedded once with the folder's model (fast path; recordings refused for
   too little speech are left out and counted). The first half of the
   speakers (sorted) is enrolled in a :class:`SpeakerGallery` from its first
   3 usable recordings (list order); the queries are their other recordings
   (known) and every recording of the other half (unknown). For each
   scoring of :data:`~speechbrain_eres2net.evaluation.gallery.SCORINGS`:
   closed-set top-1 and top-5 accuracy (known queries); the open-set
   detection-and-identification rate (DIR: the share of known queries
   whose top candidate is right and scores above a threshold) at 1 % and
   10 % false alarm (the threshold lets that share of the unknown queries'
   top scores, rounded down, above it); and the share of correct default
   answers of :meth:`Identifier.answer` (the folder's calibration, default
   ``p_enrolled``: the right speaker for a known query, unknown for an
   unknown one). Reference: sherpa-onnx's recipe, its
   ``SpeakerEmbeddingManager`` (file
   ``sherpa-onnx/csrc/speaker-embedding-manager.cc``): ``Add(name,
   embedding_list)`` sums the raw embeddings and normalises the sum,
   ``Search`` takes the best cosine with the normalised query and names it
   when it reaches one threshold; here that threshold is
   tuned on these very queries to maximise the share of correct answers
   (an oracle no deployment has). Target: our default answers at least as
   often correct as the oracle-tuned reference, for the default scoring
   (``gallery_scoring`` of ``hparams/verification.yaml``).
2. **Calibration of multi-recording enrollment.** Every (known query,
   enrolled speaker) pair is a trial, target when the speaker is the
   query's: Cllr of the folder calibration's LLRs (``sides_llr`` with the
   speaker's total net speech and the query's, and the speaker's mean raw
   embedding norm and the query's, as :meth:`Identifier.answer` computes
   them) against the minCllr of the same scores (PAV), per scoring; and the
   same with every enrolled recording alone as a speaker (one recording a
   side, the kind of trials calibrations are fitted on), to show the shift.
3. **Scale.** One query against 1 k, 10 k and 100 k enrolled speakers
   (random 192-d embeddings, 3 recordings each, default scoring), in a
   fresh process: ms per query of :meth:`Identifier.answer` (calibration
   ``Calibration(10, -5)``) against a sherpa-onnx-style search (one
   matrix-vector product with precomputed speaker means and an argmax),
   gallery file size after :meth:`SpeakerGallery.save`, load time, peak RSS
   of load + query, and the time to enroll one more speaker.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

# At module level so that the scale worker's baseline RSS (taken after this
# module is imported) holds them: Identifier's embedder module brings
# speechbrain (about 70 MiB).
from speechbrain_eres2net.evaluation.calibration import Calibration, cllr, min_cllr
from speechbrain_eres2net.evaluation.gallery import SCORINGS, SpeakerGallery
from speechbrain_eres2net.evaluation.identification import Identifier
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.settings import default

from .common import (
    REALSPK,
    Row,
    interleaved_times,
    run_isolated,
    run_parts,
    set_threads,
)
from .worker import peak_rss_mb

SECTION = "identification"
ENROLL_RECORDINGS = 3
TOP_K = 5
FALSE_ALARMS = (0.01, 0.10)
DEFAULT_ANSWER_TARGET = 1.0
SCALE_DIM = 192
SHERPA = (
    "reference: sherpa-onnx SpeakerEmbeddingManager (mean of the raw embeddings, "
    "cosine, best candidate)"
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of everything one run measures."""

    enrolled: Optional[int]
    """Speakers enrolled, the first of the sorted dev speakers (None: half)."""
    unknown: Optional[int]
    """Speakers never enrolled, the next ones (None: all the others)."""
    scale: tuple[int, ...]
    """Enrolled speakers of the scale rows."""
    query_repeats: int
    """Timed queries per scale point (median)."""


FULL = Sizes(
    enrolled=None, unknown=None, scale=(1_000, 10_000, 100_000), query_repeats=21
)
QUICK = Sizes(enrolled=6, unknown=6, scale=(100, 1_000), query_repeats=3)


# -------------------------------------------------------------------- data


def dev_speakers() -> dict[str, list[str]]:
    """realspk dev speaker -> its recordings (relative to wav/), list order."""
    speakers: dict[str, list[str]] = {}
    for line in (REALSPK / "dev_list.txt").read_text().splitlines():
        if line.strip():
            speaker, rel = line.split()[:2]
            speakers.setdefault(speaker, []).append(rel)
    return dict(sorted(speakers.items()))


@dataclasses.dataclass
class Split:
    """Enrollment and queries of part 1, with every usable recording's data."""

    enroll: dict[str, list[str]]
    """Enrolled speaker -> its enrollment recordings."""
    queries: list[str]
    """Query recordings, known ones first."""
    truth: list[Optional[str]]
    """Each query's speaker, None for a speaker not enrolled."""
    embeddings: dict[str, np.ndarray]
    """Recording -> raw embedding (usable recordings only)."""
    seconds: dict[str, float]
    """Recording -> net speech."""
    refused: list[str]
    """Recordings refused or unreadable (left out)."""
    not_enrolled: list[str]
    """Speakers of the enrolled half that could not be enrolled."""


def embed_split(embedder: SpeakerEmbedder, sizes: Sizes) -> Split:
    """Embeds the chosen dev speakers once and splits enrollment / queries."""
    speakers = dev_speakers()
    names = list(speakers)
    enrolled = sizes.enrolled if sizes.enrolled is not None else len(names) // 2
    unknown = sizes.unknown if sizes.unknown is not None else len(names) - enrolled
    names = names[: enrolled + unknown]
    paths = {rel: REALSPK / "wav" / rel for name in names for rel in speakers[name]}
    done = embedder.embed_files(list(paths.values()), progress=False)
    usable = {rel for rel, path in paths.items() if str(path) in done.embeddings}
    embeddings = {rel: done.embeddings[str(paths[rel])] for rel in usable}
    seconds = {rel: done.speech[str(paths[rel])].seconds for rel in usable}
    minimum = float(default("min_enroll_speech_seconds"))
    enroll, known, not_enrolled = {}, [], []
    for name in names[:enrolled]:
        mine = [rel for rel in speakers[name] if rel in usable]
        chosen = mine[:ENROLL_RECORDINGS]
        # The CLI refuses an enrollment with too little net speech; so do we.
        if not chosen or sum(seconds[r] for r in chosen) < minimum:
            not_enrolled.append(name)
            continue
        enroll[name] = chosen
        known += [(rel, name) for rel in mine[ENROLL_RECORDINGS:]]
    others = [
        (rel, None)
        for name in names[enrolled:]
        for rel in speakers[name]
        if rel in usable
    ]
    queries = known + others
    return Split(
        enroll,
        [rel for rel, _ in queries],
        [name for _, name in queries],
        embeddings,
        seconds,
        sorted(set(paths) - usable),
        not_enrolled,
    )


def build_gallery(
    split: Split, fingerprint: str, single: bool = False
) -> SpeakerGallery:
    """The gallery of the split's enrollment; ``single``: every enrolled
    recording alone as a speaker (named by its recording)."""
    dim = next(iter(split.embeddings.values())).size
    gallery = SpeakerGallery(fingerprint, dim)
    for name, rels in split.enroll.items():
        groups = [[r] for r in rels] if single else [rels]
        for group in groups:
            gallery.enroll(
                group[0] if single else name,
                [split.embeddings[r] for r in group],
                [split.seconds[r] for r in group],
                group,
            )
    return gallery


# ----------------------------------------------------------------- metrics


def all_scores(
    gallery: SpeakerGallery, queries: np.ndarray, scoring: str
) -> np.ndarray:
    """(queries, speakers) score of every query against every speaker."""
    index, scores = gallery.search(queries, len(gallery), scoring)
    full = np.empty_like(scores)
    np.put_along_axis(full, index, scores, axis=1)
    return full


def sherpa_scores(split: Split, queries: np.ndarray) -> np.ndarray:
    """(queries, speakers) scores of sherpa-onnx's recipe: the normalised sum
    (hence mean direction) of each speaker's raw embeddings, cosine."""
    means = np.stack(
        [
            np.sum([split.embeddings[r] for r in rels], axis=0)
            for rels in split.enroll.values()
        ]
    )
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return unit @ means.T


def open_set(scores: np.ndarray, truth: np.ndarray) -> dict:
    """Closed-set accuracy, DIR at fixed false alarms and the best share of
    correct answers over all thresholds, from (queries, speakers) scores.

    ``truth`` holds each query's speaker column, -1 for unknown speakers.
    Percentages in [0, 100].
    """
    known = truth >= 0
    order = np.argsort(-scores, axis=1, kind="stable")
    top = order[:, 0]
    best = scores[np.arange(len(scores)), top]
    right = known & (top == truth)
    impostor = np.sort(best[~known])[::-1]
    out = {
        "top1": 100.0 * float(np.mean(right[known])),
        "top5": 100.0
        * float(np.mean((order[known, :TOP_K] == truth[known, None]).any(axis=1))),
    }
    for far in FALSE_ALARMS:
        # At most floor(far * n) unknown top scores lie strictly above it.
        k = math.floor(far * impostor.size + 1e-9)
        threshold = impostor[k] if k < impostor.size else -np.inf
        out[f"dir_{far:g}"] = 100.0 * float(
            np.mean(right[known] & (best[known] > threshold))
        )
        out[f"far_{far:g}"] = 100.0 * float(np.mean(impostor > threshold))
    # Every distinct top score (and -inf) as "accept above it", the sherpa
    # rule up to ties; the best of them is the oracle-tuned threshold.
    candidates = np.concatenate([[-np.inf], np.unique(best)])
    named = np.sort(best[right])
    rejected = np.sort(best[~known])
    correct = (named.size - np.searchsorted(named, candidates, side="right")) + (
        np.searchsorted(rejected, candidates, side="right")
    )
    i = int(np.argmax(correct))
    out["oracle_share"] = 100.0 * float(correct[i]) / len(best)
    out["oracle_threshold"] = float(candidates[i])
    return out


def default_answers(split: Split, identifier: Identifier, queries: np.ndarray) -> dict:
    """Share (%) of correct :meth:`Identifier.answer` answers, and its split
    into known queries named right and unknown ones rejected."""
    answers = identifier.answer(
        queries, [split.seconds[r] for r in split.queries], split.queries, TOP_K
    )
    hits = np.array([a.speaker == t for a, t in zip(answers, split.truth)])
    known = np.array([t is not None for t in split.truth])
    return {
        "share": 100.0 * float(hits.mean()),
        "known": 100.0 * float(hits[known].mean()) if known.any() else math.nan,
        "unknown": 100.0 * float(hits[~known].mean()) if (~known).any() else math.nan,
        "rule": identifier.rule(),
        "p_enrolled": identifier.p_enrolled,
        "speakers": len(identifier.gallery),
    }


def trial_cllrs(
    gallery: SpeakerGallery,
    scores: np.ndarray,
    labels: np.ndarray,
    seconds: Sequence[float],
    norms: Sequence[float],
    calibration: Calibration,
) -> dict:
    """Cllr of the calibration's LLRs and minCllr of the scores, for every
    (query, speaker) pair of ``scores`` (target where ``labels`` is True).

    The LLRs take the speaker's total net speech and mean raw norm, and the
    query's (``seconds``, ``norms``), as :meth:`Identifier.answer` does.
    """
    queries, speakers = scores.shape
    rows = np.repeat(np.arange(queries), speakers)
    cols = np.tile(np.arange(speakers), queries)
    labels = labels.ravel()
    flat = scores.ravel()
    llrs = calibration.sides_llr(
        flat,
        (gallery.speaker_seconds()[cols], np.asarray(seconds)[rows]),
        (gallery.speaker_norms()[cols], np.asarray(norms)[rows]),
    )
    return {
        "cllr": cllr(llrs, labels),
        "min_cllr": min_cllr(flat, labels),
        "target_llr": float(np.mean(llrs[labels])),
        "nontarget_llr": float(np.mean(llrs[~labels])),
        "targets": int(labels.sum()),
        "trials": int(labels.size),
    }


def _ratio(ours: Optional[float], reference: Optional[float]) -> Optional[float]:
    if ours is None or not reference or math.isnan(ours):
        return None
    return ours / reference


# ------------------------------------------------------------------ part 1+2


def realspk_rows(
    model: str, sizes: Sizes, calibration: Optional[Calibration]
) -> list[Row]:
    """Parts 1 and 2: identification and calibration rows on realspk dev."""
    embedder = SpeakerEmbedder.from_folder(model, fast=True)
    split = embed_split(embedder, sizes)
    gallery = build_gallery(split, embedder.fingerprint)
    columns = {name: k for k, name in enumerate(gallery.speakers)}
    truth = np.array([-1 if t is None else columns[t] for t in split.truth])
    queries = np.stack([split.embeddings[r] for r in split.queries])
    known = truth >= 0
    n_known, n_unknown = int(known.sum()), int((~known).sum())
    setup = (
        f"{len(gallery)} speakers x {ENROLL_RECORDINGS} recordings enrolled, "
        f"{n_known} known + {n_unknown} unknown queries"
    )
    left_out = f"{len(split.refused)} recordings refused or unreadable, left out"
    if split.not_enrolled:
        left_out += f"; not enrolled (too little speech): {split.not_enrolled}"
    reference = open_set(sherpa_scores(split, queries), truth)
    default_scoring = str(default("gallery_scoring"))
    rows: list[Row] = []
    full_scores = {}
    for scoring in SCORINGS:
        scores = all_scores(gallery, queries, scoring)
        full_scores[scoring] = scores
        ours = open_set(scores, truth)
        label = f"{scoring} scoring" + (
            " (default)" if scoring == default_scoring else ""
        )
        rows += [
            Row(
                SECTION,
                f"{label}: closed-set top-1 accuracy ({setup})",
                ours["top1"],
                reference["top1"],
                "% right",
                _ratio(ours["top1"], reference["top1"]),
                note=f"{SHERPA}; {left_out}",
            ),
            Row(
                SECTION,
                f"{label}: closed-set top-{TOP_K} accuracy",
                ours["top5"],
                reference["top5"],
                "% right",
                _ratio(ours["top5"], reference["top5"]),
                note=SHERPA,
            ),
        ]
        for far in FALSE_ALARMS:
            rows.append(
                Row(
                    SECTION,
                    f"{label}: open-set DIR at {100 * far:g} % false alarm",
                    ours[f"dir_{far:g}"],
                    reference[f"dir_{far:g}"],
                    "% DIR",
                    _ratio(ours[f"dir_{far:g}"], reference[f"dir_{far:g}"]),
                    note=f"known queries named right above the threshold that "
                    f"{ours[f'far_{far:g}']:.1f} % (ours) / "
                    f"{reference[f'far_{far:g}']:.1f} % (reference) of the "
                    f"{n_unknown} unknown queries' top scores exceed; {SHERPA}",
                )
            )
        try:
            identifier = Identifier(embedder, gallery, calibration, scoring=scoring)
        except ValueError as error:  # neither a calibration nor a threshold
            answers = {"error": str(error)}
        else:
            answers = default_answers(split, identifier, queries)
        target = DEFAULT_ANSWER_TARGET if scoring == default_scoring else None
        rows.append(answers_row(label, answers, ours, reference, target))
    rows += calibration_rows(
        split, gallery, embedder.fingerprint, calibration, full_scores, truth
    )
    return rows


def answers_row(
    label: str, answers: dict, ours: dict, reference: dict, target: Optional[float]
) -> Row:
    """Part 1: share of correct default answers vs the oracle-tuned reference.

    ``answers`` is :func:`default_answers`' dict, or ``{"error": ...}`` when
    the folder has neither a calibration nor a threshold.
    """
    name = f"{label}: correct default answers (Identifier.answer)"
    note = (
        f"reference: sherpa-onnx's recipe with one cosine threshold "
        f"({reference['oracle_threshold']:.3f}) tuned on these very queries to "
        f"maximise this share (an oracle); ours at its own oracle threshold: "
        f"{ours['oracle_share']:.1f} %"
    )
    if "error" in answers:
        return Row(
            SECTION,
            name,
            None,
            reference["oracle_share"],
            "% correct",
            note=f"{answers['error']}; {note}",
        )
    on, threshold = answers["rule"]
    rule = (
        f"Bayes rule: best LLR > {threshold:.2f} (p_enrolled "
        f"{answers['p_enrolled']:g}, {answers['speakers']} speakers)"
        if on == "llr"
        else f"cosine threshold {threshold:.3f} (no calibration)"
    )
    return Row(
        SECTION,
        name,
        answers["share"],
        reference["oracle_share"],
        "% correct",
        _ratio(answers["share"], reference["oracle_share"]),
        target,
        True,
        f"{rule}: known named right {answers['known']:.1f} %, unknown rejected "
        f"{answers['unknown']:.1f} %; {note}",
    )


def calibration_rows(
    split: Split,
    gallery: SpeakerGallery,
    fingerprint: str,
    calibration: Optional[Calibration],
    full_scores: dict[str, np.ndarray],
    truth: np.ndarray,
) -> list[Row]:
    """Part 2: Cllr vs minCllr of multi- and single-recording enrollment."""
    if calibration is None:
        return [
            Row(
                SECTION,
                "calibration of multi-recording enrollment",
                None,
                note="skipped: no calibration.json in the model folder",
            )
        ]
    known = truth >= 0
    known_rels = [r for r, k in zip(split.queries, known) if k]
    seconds = [split.seconds[r] for r in known_rels]
    norms = [float(np.linalg.norm(split.embeddings[r])) for r in known_rels]
    queries = np.stack([split.embeddings[r] for r in known_rels])
    fitted = calibration.fitted_on.get("trials", "unknown trials")
    qualities = ", ".join(calibration.quality_names) or "score alone"
    rows = []
    # Every enrolled recording alone as a speaker: one recording a side, as in
    # the trial lists calibrations are fitted on.
    single = build_gallery(split, fingerprint, single=True)
    owner = {rel: name for name, rels in split.enroll.items() for rel in rels}
    names = [t for t in split.truth if t is not None]
    single_labels = np.array([[owner[s] == t for s in single.speakers] for t in names])
    one = trial_cllrs(
        single,
        all_scores(single, queries, "mean"),
        single_labels,
        seconds,
        norms,
        calibration,
    )
    for scoring, scores in full_scores.items():
        labels = truth[known, None] == np.arange(len(gallery))
        result = trial_cllrs(
            gallery, scores[known], labels, seconds, norms, calibration
        )
        rows.append(
            Row(
                SECTION,
                f"{scoring} scoring, {ENROLL_RECORDINGS}-recording enrollment: Cllr "
                f"(reference minCllr of the same scores)",
                result["cllr"],
                result["min_cllr"],
                "Cllr bits",
                _ratio(result["cllr"], result["min_cllr"]),
                higher_is_better=False,
                note=f"{result['trials']} trials ({result['targets']} target); mean "
                f"LLR target {result['target_llr']:.2f}, non-target "
                f"{result['nontarget_llr']:.2f} (single-recording enrollment: "
                f"{one['target_llr']:.2f}, {one['nontarget_llr']:.2f}); calibration "
                f"fitted on {fitted} ({qualities})",
            )
        )
    rows.append(
        Row(
            SECTION,
            "single-recording enrollment (each enrolled recording alone): Cllr "
            "(reference minCllr of the same scores)",
            one["cllr"],
            one["min_cllr"],
            "Cllr bits",
            _ratio(one["cllr"], one["min_cllr"]),
            higher_is_better=False,
            note=f"{one['trials']} trials ({one['targets']} target); mean LLR target "
            f"{one['target_llr']:.2f}, non-target {one['nontarget_llr']:.2f}; "
            f"calibration fitted on {fitted} ({qualities})",
        )
    )
    return rows


# ------------------------------------------------------------------- scale


def random_gallery(
    speakers: int, recordings: int, dim: int, seed: int
) -> SpeakerGallery:
    """A gallery of random embeddings, ``recordings`` per speaker, 2-10 s each."""
    rng = np.random.default_rng(seed)
    n = speakers * recordings
    gallery = SpeakerGallery(f"random-{seed}", dim)
    # Filled in bulk: enroll() copies and regroups the whole gallery on every
    # call (the "enroll one more" row measures it), so enrolling 100 k
    # speakers one by one is quadratic. These are the arrays load() fills.
    gallery.speakers = [f"spk{i:06d}" for i in range(speakers)]
    gallery.owner = np.repeat(np.arange(speakers, dtype=np.int32), recordings)
    gallery.embeddings = rng.standard_normal((n, dim), dtype=np.float32)
    gallery.speech = rng.uniform(2.0, 10.0, n).astype(np.float32)
    gallery.recordings = [
        f"spk{i:06d}/rec{j}.wav" for i in range(speakers) for j in range(recordings)
    ]
    return gallery


def load_and_query(path: str, repeats: int, seed: int) -> dict:
    """Worker: load a gallery, answer one query, time it against a
    sherpa-onnx-style search, then enroll one more speaker.

    ``query_peak_rss_mb`` is the peak after load and the queries, before the
    reference's speaker matrix and the enrollment add their own.
    """
    start = time.perf_counter()
    gallery = SpeakerGallery.load(path)
    load_s = time.perf_counter() - start
    # Another stream than random_gallery's, or the query would be enrolled.
    rng = np.random.default_rng([seed, 1])
    query = rng.standard_normal((1, gallery.dim), dtype=np.float32)
    # Only Identifier's check of a fallback threshold looks at the embedder.
    embedder = types.SimpleNamespace(threshold=None)
    identifier = Identifier(embedder, gallery, Calibration(10.0, -5.0))

    def ours():
        return identifier.answer(query, [5.0], ["query"], TOP_K)

    start = time.perf_counter()
    ours()  # builds and caches the speaker models of the scoring
    first_s = time.perf_counter() - start
    query_peak = peak_rss_mb()
    starts = np.searchsorted(gallery.owner, np.arange(len(gallery)))
    means = np.add.reduceat(gallery.embeddings, starts, axis=0)
    means /= np.linalg.norm(means, axis=1, keepdims=True)

    def sherpa():
        unit = query[0] / np.linalg.norm(query[0])
        scores = means @ unit
        best = int(np.argmax(scores))
        return gallery.speakers[best], float(scores[best])

    def search():
        return gallery.search(query, TOP_K, identifier.scoring)

    times = interleaved_times(
        {"ours": ours, "search": search, "sherpa": sherpa}, repeats
    )
    same = ours()[0].candidates[0].speaker == sherpa()[0]
    new = rng.standard_normal((ENROLL_RECORDINGS, gallery.dim), dtype=np.float32)
    start = time.perf_counter()
    gallery.enroll("new speaker", new, [5.0] * len(new), ["new"] * len(new))
    enroll_s = time.perf_counter() - start
    return {
        "load_s": load_s,
        "first_s": first_s,
        "ours_s": times["ours"],
        "sherpa_s": times["sherpa"],
        "search_s": times["search"],
        "same_best": bool(same),
        "enroll_s": enroll_s,
        "query_peak_rss_mb": query_peak,
        "scoring": identifier.scoring,
        "load": os.getloadavg()[0],
    }


def scale_rows(folder: Path, sizes: Sizes, threads: int, seed: int) -> list[Row]:
    """Part 3: query time, file size, load time and memory at 1 k-100 k speakers."""
    rows = []
    for speakers in sizes.scale:
        gallery = random_gallery(speakers, ENROLL_RECORDINGS, SCALE_DIM, seed)
        embeddings_mb = gallery.embeddings.nbytes / 2**20
        path = folder / f"gallery_{speakers}.npz"
        start = time.perf_counter()
        gallery.save(path)
        save_s = time.perf_counter() - start
        del gallery
        size_mb = path.stat().st_size / 2**20
        result = run_isolated(
            "benchmarks.identification:load_and_query",
            {"path": str(path), "repeats": sizes.query_repeats, "seed": seed},
            threads=threads,
        )
        path.unlink()
        what = f"{speakers:,} speakers x {ENROLL_RECORDINGS} recordings"
        base = result["base_rss_mb"]
        rows += [
            Row(
                SECTION,
                f"one query vs {what}: Identifier.answer",
                result["ours_s"] * 1e3,
                result["sherpa_s"] * 1e3,
                "ms",
                result["sherpa_s"] / result["ours_s"],
                note=f"{result['scoring']} scoring, top {TOP_K}, random {SCALE_DIM}-d "
                f"embeddings, Calibration(10, -5); median of "
                f"{sizes.query_repeats} interleaved, of which SpeakerGallery.search "
                f"{result['search_s'] * 1e3:.2f} ms; first query "
                f"{result['first_s'] * 1e3:.1f} ms (builds the speaker models); "
                f"reference: sherpa-onnx-style search (precomputed unit speaker "
                f"means, one matrix-vector product, argmax), same best speaker: "
                f"{result['same_best']}; {threads}thr, load {result['load']:.2f}",
            ),
            Row(
                SECTION,
                f"gallery of {what}: file size after save",
                size_mb,
                unit="MiB",
                note=f"{size_mb * 2**20 / speakers:.0f} bytes per speaker; "
                f"embeddings alone {embeddings_mb:.1f} MiB; save {save_s:.2f} s",
            ),
            Row(
                SECTION,
                f"gallery of {what}: load",
                result["load_s"],
                unit="s",
                note="SpeakerGallery.load in a fresh process (file in the page cache)",
            ),
            Row(
                SECTION,
                f"gallery of {what}: peak RSS of load + query",
                result["query_peak_rss_mb"],
                unit="MiB",
                note=f"fresh process; work itself (peak - base) "
                f"{result['query_peak_rss_mb'] - base:.0f} MiB over a base of "
                f"{base:.0f} MiB (Python, torch, the package)",
            ),
            Row(
                SECTION,
                f"gallery of {what}: enroll one more speaker",
                result["enroll_s"] * 1e3,
                unit="ms",
                note=f"SpeakerGallery.enroll, {ENROLL_RECORDINGS} recordings (copies "
                "and regroups the gallery's arrays)",
            ),
        ]
    return rows


# ------------------------------------------------------------------ section


def bench_identification(
    model: Optional[str],
    quick: bool = False,
    threads: int = 2,
    seed: int = 1234,
) -> list[Row]:
    """All rows of the section; a part that fails leaves a ``section failed`` row.

    Arguments
    ---------
    model : str, optional
        Model folder (with its ``calibration.json`` for the calibrated
        answers and part 2); the realspk parts are skipped without one, the
        scale part runs anyway.
    quick : bool
        Tiny sizes (:data:`QUICK`) for a smoke run.
    threads : int
        Torch threads here and in the worker processes.
    seed : int
        Seed of the random galleries and queries.
    """
    sizes = QUICK if quick else FULL
    set_threads(threads)
    parts: list[tuple[str, Callable[[Path], list[Row]]]] = []
    skipped = None
    if model is None:
        skipped = "skipped: no model folder given (--identification-model)"
    elif not (REALSPK / "dev_list.txt").is_file():
        skipped = f"skipped: {REALSPK} absent"
    else:
        from speechbrain_eres2net.evaluation.decisions import folder_calibration

        calibration = folder_calibration(model)
        parts.append(("realspk", lambda d: realspk_rows(model, sizes, calibration)))
    parts.append(("scale", lambda d: scale_rows(d, sizes, threads, seed)))
    rows: list[Row] = []
    if skipped:
        rows.append(
            Row(
                SECTION,
                "realspk open-set identification and calibration",
                None,
                note=skipped,
            )
        )
    rows += run_parts(SECTION, parts)
    return rows
