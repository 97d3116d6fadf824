"""Open-set identification: enroll speakers from several recordings, find them.

Benchmark ``identification`` (``--identification-model``, a folder with its
calibration; part 3 runs without), in parts: (1) on realspk dev, half the
speakers enrolled from 3 recordings each, queried with their other recordings
(known) and every recording of the other half (unknown): per gallery scoring,
closed-set top-1/top-5 accuracy, DIR at 1 % and 10 % false alarm, and the
share of correct :meth:`Identifier.answer` answers; the reference is
sherpa-onnx's ``SpeakerEmbeddingManager`` recipe (normalised sum of the raw
embeddings, best cosine) with one threshold tuned on these very queries (an
oracle); (2) Cllr of the calibration's LLRs vs minCllr of the same scores, with
3-recording and single-recording enrollment; (3) one query against 1 k-100 k
random speakers: time vs a sherpa-style search, file size, load, peak RSS.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import types
from collections.abc import Sequence
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

from .driver import render, run_parts, skipped, table
from .measure import (
    REALSPK,
    dev_speakers,
    has_realspk,
    interleaved_times,
    peak_rss_mb,
    run_isolated,
    set_threads,
)

SECTION = "identification"
ENROLL_RECORDINGS = 3
TOP_K = 5
FALSE_ALARMS = (0.01, 0.10)
SCALE_DIM = 192
# (enrolled, unknown speakers: None for halves; scale; query repeats) by --quick.
SIZES = {
    False: (None, None, (1_000, 10_000, 100_000), 21),
    True: (6, 6, (100, 1_000), 3),
}
# Besides the measured values, every table may use the constants below.
CONSTANTS = {
    "top_k": TOP_K,
    "recordings": ENROLL_RECORDINGS,
    "dim": SCALE_DIM,
    "sherpa": "reference: sherpa-onnx SpeakerEmbeddingManager (mean of the raw "
    "embeddings, cosine, best candidate)",
}
SCORING_ROWS = table(
    """
    {label}: closed-set top-1 accuracy ({setup})
        top1 / ref_top1, % right
        {sherpa}; {left_out}
    {label}: closed-set top-{top_k} accuracy
        top5 / ref_top5, % right
        {sherpa}
    {label}: open-set DIR at 1 % false alarm
        dir_001 / ref_dir_001, % DIR
        known queries named right above the threshold that {far_001:.1f} % (ours)
        / {ref_far_001:.1f} % (reference) of the {n_unknown} unknown queries' top
        scores exceed; {sherpa}
    {label}: open-set DIR at 10 % false alarm
        dir_01 / ref_dir_01, % DIR
        known queries named right above the threshold that {far_01:.1f} % (ours)
        / {ref_far_01:.1f} % (reference) of the {n_unknown} unknown queries' top
        scores exceed; {sherpa}
    {label}: correct default answers (Identifier.answer)
        share / ref_oracle_share, % correct, >= answer_target
        {answers_note}reference: sherpa-onnx's recipe with one cosine threshold
        ({ref_oracle_threshold:.3f}) tuned on these very queries to maximise this
        share (an oracle); ours at its own oracle threshold: {oracle_share:.1f} %
    """
)
CLLR_ROWS = table(
    """
    {what}: Cllr (reference minCllr of the same scores)
        cllr / min_cllr, Cllr bits, lower
        {trials} trials ({targets} target); mean LLR target {target_llr:.2f},
        non-target {nontarget_llr:.2f}{single}; calibration fitted on {fitted}
        ({qualities})
    """
)
SCALE_ROWS = table(
    """
    one query vs {what}: Identifier.answer
        ours_s / sherpa_s, ms, x1000
        {scoring} scoring, top {top_k}, random {dim}-d embeddings, Calibration(10,
        -5); median of {repeats} interleaved, of which SpeakerGallery.search
        {search_ms:.2f} ms; first query {first_ms:.1f} ms (builds the speaker
        models); reference: sherpa-onnx-style search (precomputed unit speaker
        means, one matrix-vector product, argmax), same best speaker: {same_best};
        {threads}thr, load {load:.2f}
    gallery of {what}: file size after save
        size_mb, MiB
        {per_speaker:.0f} bytes per speaker; embeddings alone {embeddings_mb:.1f}
        MiB; save {save_s:.2f} s
    gallery of {what}: load
        load_s, s
        SpeakerGallery.load in a fresh process (file in the page cache)
    gallery of {what}: peak RSS of load + query
        query_peak_rss_mb, MiB
        fresh process; work itself (peak - base) {work_mb:.0f} MiB over a base of
        {base_rss_mb:.0f} MiB (Python, torch, the package)
    gallery of {what}: enroll one more speaker
        enroll_s, ms, x1000
        SpeakerGallery.enroll, {recordings} recordings (copies and regroups the
        gallery's arrays)
    """
)


@dataclasses.dataclass
class Split:
    """Enrollment and queries of part 1, with every usable recording's data."""

    enroll: dict[str, list[str]]  # enrolled speaker -> enrollment recordings
    queries: list[str]  # known queries first
    truth: list[Optional[str]]  # each query's speaker, None if not enrolled
    embeddings: dict[str, np.ndarray]  # usable recording -> raw embedding
    seconds: dict[str, float]  # usable recording -> net speech
    refused: list[str]  # recordings refused or unreadable (left out)
    not_enrolled: list[str]  # enrolled-half speakers with too little speech


def embed_split(embedder: SpeakerEmbedder, enrolled, unknown) -> Split:
    """Embeds the chosen dev speakers once and splits enrollment / queries."""
    speakers = dev_speakers()
    names = list(speakers)
    enrolled = len(names) // 2 if enrolled is None else enrolled
    unknown = len(names) - enrolled if unknown is None else unknown
    names = names[: enrolled + unknown]
    paths = {rel: REALSPK / "wav" / rel for name in names for rel in speakers[name]}
    done = embedder.embed_files(list(paths.values()), progress=False)
    usable = {rel for rel, path in paths.items() if str(path) in done.embeddings}
    embeddings = {rel: done.embeddings[str(paths[rel])] for rel in usable}
    seconds = {rel: done.speech[str(paths[rel])].seconds for rel in usable}
    minimum = float(default("min_enroll_speech_seconds"))
    enroll, queries, not_enrolled = {}, [], []
    for name in names[:enrolled]:
        mine = [rel for rel in speakers[name] if rel in usable]
        chosen = mine[:ENROLL_RECORDINGS]
        # The CLI refuses an enrollment with too little net speech; so do we.
        if not chosen or sum(seconds[r] for r in chosen) < minimum:
            not_enrolled.append(name)
            continue
        enroll[name] = chosen
        queries += [(rel, name) for rel in mine[ENROLL_RECORDINGS:]]
    queries += [
        (rel, None)
        for name in names[enrolled:]
        for rel in speakers[name]
        if rel in usable
    ]
    return Split(
        enroll,
        [rel for rel, _ in queries],
        [name for _, name in queries],
        embeddings,
        seconds,
        sorted(set(paths) - usable),
        not_enrolled,
    )


def build_gallery(split: Split, fingerprint: str, single: bool = False):
    """The gallery of the split's enrollment; ``single``: every enrolled
    recording alone as a speaker (named by its recording)."""
    dim = next(iter(split.embeddings.values())).size
    gallery = SpeakerGallery(fingerprint, dim)
    for name, rels in split.enroll.items():
        for group in [[r] for r in rels] if single else [rels]:
            gallery.enroll(
                group[0] if single else name,
                [split.embeddings[r] for r in group],
                [split.seconds[r] for r in group],
                group,
            )
    return gallery


def all_scores(gallery: SpeakerGallery, queries: np.ndarray, scoring: str):
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
            np.sum([split.embeddings[r] for r in rels], 0)
            for rels in split.enroll.values()
        ]
    )
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    return queries / np.linalg.norm(queries, axis=1, keepdims=True) @ means.T


def open_set(scores: np.ndarray, truth: np.ndarray) -> dict:
    """Closed-set accuracy, DIR at fixed false alarms and the best share of
    correct answers over all thresholds, from (queries, speakers) scores;
    ``truth`` holds each query's speaker column, -1 for unknown speakers.
    Percentages in [0, 100]."""
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
        hits = right[known] & (best[known] > threshold)
        out[f"dir_{far:g}"] = 100.0 * float(np.mean(hits))
        out[f"far_{far:g}"] = 100.0 * float(np.mean(impostor > threshold))
    # Every distinct top score (and -inf) as "accept above it", the sherpa
    # rule up to ties; the best of them is the oracle-tuned threshold.
    candidates = np.concatenate([[-np.inf], np.unique(best)])
    named, rejected = np.sort(best[right]), np.sort(best[~known])
    correct = named.size - np.searchsorted(named, candidates, side="right")
    correct += np.searchsorted(rejected, candidates, side="right")
    i = int(np.argmax(correct))
    out["oracle_share"] = 100.0 * float(correct[i]) / len(best)
    out["oracle_threshold"] = float(candidates[i])
    return out


def default_answers(split: Split, identifier: Identifier, queries) -> dict:
    """Share (%) of correct :meth:`Identifier.answer` answers, and a note
    with the rule that decided and its split into known and unknown."""
    seconds = [split.seconds[r] for r in split.queries]
    answers = identifier.answer(queries, seconds, split.queries, TOP_K)
    hits = np.array([a.speaker == t for a, t in zip(answers, split.truth)])
    known = np.array([t is not None for t in split.truth])
    on, threshold = identifier.rule()
    rule = (
        f"Bayes rule: best LLR > {threshold:.2f} (p_enrolled "
        f"{identifier.p_enrolled:g}, {len(identifier.gallery)} speakers)"
        if on == "llr"
        else f"cosine threshold {threshold:.3f} (no calibration)"
    )
    shares = [
        100.0 * float(hits[k].mean()) if k.any() else math.nan for k in (known, ~known)
    ]
    note = f"{rule}: known named right {shares[0]:.1f} %, unknown rejected "
    return {
        "share": 100.0 * float(hits.mean()),
        "answers_note": note + f"{shares[1]:.1f} %; ",
    }


def trial_cllrs(gallery, scores, labels, seconds, norms, calibration) -> dict:
    """Cllr of the calibration's LLRs and minCllr of the scores, for every
    (query, speaker) pair of ``scores`` (target where ``labels``); the LLRs
    take both sides' net speech and mean raw norm, as the Identifier does."""
    queries, speakers = scores.shape
    rows = np.repeat(np.arange(queries), speakers)
    cols = np.tile(np.arange(speakers), queries)
    labels, flat = labels.ravel(), scores.ravel()
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


def realspk_rows(model: str, enrolled, unknown, calibration) -> list:
    """Parts 1 and 2: identification and calibration rows on realspk dev."""
    embedder = SpeakerEmbedder.from_folder(model, fast=True)
    split = embed_split(embedder, enrolled, unknown)
    gallery = build_gallery(split, embedder.fingerprint)
    columns = {name: k for k, name in enumerate(gallery.speakers)}
    truth = np.array([-1 if t is None else columns[t] for t in split.truth])
    queries = np.stack([split.embeddings[r] for r in split.queries])
    known = truth >= 0
    left_out = f"{len(split.refused)} recordings refused or unreadable, left out"
    if split.not_enrolled:
        left_out += f"; not enrolled (too little speech): {split.not_enrolled}"
    common = {
        "setup": f"{len(gallery)} speakers x {ENROLL_RECORDINGS} recordings enrolled, "
        f"{int(known.sum())} known + {int((~known).sum())} unknown queries",
        "left_out": left_out,
        "n_unknown": int((~known).sum()),
    }
    reference = open_set(sherpa_scores(split, queries), truth)
    common.update({f"ref_{k}": v for k, v in reference.items()}, **CONSTANTS)
    default_scoring = str(default("gallery_scoring"))
    rows, full_scores = [], {}
    for scoring in SCORINGS:
        scores = full_scores[scoring] = all_scores(gallery, queries, scoring)
        try:
            identifier = Identifier(embedder, gallery, calibration, scoring=scoring)
        except ValueError as error:  # neither a calibration nor a threshold
            answers = {"share": None, "answers_note": f"{error}; "}
        else:
            answers = default_answers(split, identifier, queries)
        values = {**common, **open_set(scores, truth), **answers}
        # str.format reads "far_0.01" as an attribute: the tables drop the dot.
        values = {k.replace(".", ""): v for k, v in values.items()}
        values["label"] = f"{scoring} scoring" + (
            " (default)" if scoring == default_scoring else ""
        )
        values["answer_target"] = 1.0 if scoring == default_scoring else None
        rows += render(SECTION, SCORING_ROWS, values)
    if calibration is None:
        why = "no calibration.json in the model folder"
        return rows + skipped(SECTION, "calibration of multi-recording enrollment", why)
    # Part 2. Every enrolled recording alone as a speaker too: one recording a
    # side, as in the trial lists calibrations are fitted on.
    known_rels = [r for r, k in zip(split.queries, known) if k]
    sides = (
        [split.seconds[r] for r in known_rels],
        [float(np.linalg.norm(split.embeddings[r])) for r in known_rels],
        calibration,
    )
    mine = queries[known]
    single = build_gallery(split, embedder.fingerprint, single=True)
    owner = {rel: name for name, rels in split.enroll.items() for rel in rels}
    names = [t for t in split.truth if t is not None]
    labels = np.array([[owner[s] == t for s in single.speakers] for t in names])
    one = trial_cllrs(single, all_scores(single, mine, "mean"), labels, *sides)
    common = {
        "fitted": calibration.fitted_on.get("trials", "unknown trials"),
        "qualities": ", ".join(calibration.quality_names) or "score alone",
        "single": f" (single-recording enrollment: {one['target_llr']:.2f}, "
        f"{one['nontarget_llr']:.2f})",
    }
    labels = truth[known, None] == np.arange(len(gallery))
    for scoring, scores in full_scores.items():
        result = trial_cllrs(gallery, scores[known], labels, *sides)
        what = f"{scoring} scoring, {ENROLL_RECORDINGS}-recording enrollment"
        rows += render(SECTION, CLLR_ROWS, {**common, **result, "what": what})
    what = "single-recording enrollment (each enrolled recording alone)"
    return rows + render(
        SECTION, CLLR_ROWS, {**common, **one, "what": what, "single": ""}
    )


def random_gallery(speakers: int, recordings: int, dim: int, seed: int):
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
        scores = means @ (query[0] / np.linalg.norm(query[0]))
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
    return {
        "load_s": load_s,
        "first_ms": first_s * 1e3,
        "ours_s": times["ours"],
        "sherpa_s": times["sherpa"],
        "search_ms": times["search"] * 1e3,
        "same_best": bool(same),
        "enroll_s": time.perf_counter() - start,
        "query_peak_rss_mb": query_peak,
        "scoring": identifier.scoring,
        "load": os.getloadavg()[0],
    }


def scale_rows(
    folder: Path, scale: Sequence[int], repeats: int, threads: int, seed: int
):
    """Part 3: query time, file size, load time and memory at 1 k-100 k speakers."""
    rows = []
    for speakers in scale:
        gallery = random_gallery(speakers, ENROLL_RECORDINGS, SCALE_DIM, seed)
        embeddings_mb = gallery.embeddings.nbytes / 2**20
        path = folder / f"gallery_{speakers}.npz"
        start = time.perf_counter()
        gallery.save(path)
        save_s = time.perf_counter() - start
        del gallery
        size_mb = path.stat().st_size / 2**20
        kwargs = {"path": str(path), "repeats": repeats, "seed": seed}
        result = run_isolated(
            "benchmarks.identification:load_and_query", kwargs, threads
        )
        path.unlink()
        values = {
            **result,
            **CONSTANTS,
            "what": f"{speakers:,} speakers x {ENROLL_RECORDINGS} recordings",
            "repeats": repeats,
            "threads": threads,
            "size_mb": size_mb,
            "per_speaker": size_mb * 2**20 / speakers,
            "embeddings_mb": embeddings_mb,
            "save_s": save_s,
            "work_mb": result["query_peak_rss_mb"] - result["base_rss_mb"],
        }
        rows += render(SECTION, SCALE_ROWS, values)
    return rows


def bench_identification(args) -> list:
    """Every row; a part that fails leaves a ``section failed`` row. Options:
    ``--identification-model`` (the realspk parts are skipped without one; the
    scale part runs anyway), ``--quick``, ``--threads`` (the last count)."""
    enrolled, unknown, scale, repeats = SIZES[args.quick]
    model, threads, seed = args.identification_model, args.thread_counts[-1], 1234
    set_threads(threads)
    rows, parts = [], []
    name = "realspk open-set identification and calibration"
    if model is None:
        rows = skipped(SECTION, name, "no model folder given (--identification-model)")
    elif not has_realspk("dev_list.txt"):
        rows = skipped(SECTION, name, f"{REALSPK} absent")
    else:
        from speechbrain_eres2net.evaluation.decisions import folder_calibration

        calibration = folder_calibration(model)
        parts.append(
            ("realspk", lambda d: realspk_rows(model, enrolled, unknown, calibration))
        )
    parts.append(("scale", lambda d: scale_rows(d, scale, repeats, threads, seed)))
    return rows + run_parts(SECTION, parts)
