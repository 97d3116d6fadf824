"""Diarization: simulated realspk conversations, our clustering against two anchors.

Benchmark ``diarization`` (``--diarization-model``, a folder with its
calibration, e.g. the realspk quickstart), in parts:

1. **accuracy**: conversations of 2-5 realspk dev speakers
   (:mod:`benchmarks.conversations`: clean, 5-10 % overlap, 10 s noise gaps), a
   tuning set (seed 1) and a test set (seed 0). Every conversation's speech is
   found and cut into windows once per window length, and the same window
   embeddings go to every clustering: ours (LLR-stopped AHC over ``p_same``,
   spectral over ``pval``, spectral-ahc over both), SpeechBrain's
   (``Spec_Clust_unorm`` of
   ``speechbrain.integrations.alignment.diarization``, what its AMI recipe runs
   with cosine affinity, pval tuned as the recipe tunes it on AMI dev) and
   3D-Speaker's (``speakerlab.process.cluster.CommonClustering``, spectral with
   its diarization config: mer_cos 0.8, min_cluster_size 4, pval tuned from
   its 0.012). Each family's setting (window, its parameter) is the one with
   the lowest DER on the tuning set; the test set is scored with it: DER and
   JER (pyannote.metrics, overlap scored, collars 0.25 s and 0 s) at unknown
   speaker count, and the share of conversations whose count is exact. Turns
   come from labels by the same rule for all (:func:`label_segments`).
2. **speed**: real-time factor of :meth:`Diarizer.diarize` with ERes2Net-base
   (random weights: speed does not depend on them; the speaker count given,
   as random embeddings have no speakers) and with the benchmark's model.
   Besides, recordings of one speaker: the share found to hold one.
3. **memory**: peak RSS of ``Diarizer.diarize`` in a fresh process on a
   60-minute meeting against a 5-minute one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from speechbrain_eres2net.evaluation.clustering import (
    LLRClustering,
    SpectralClustering,
    SpectralLLRClustering,
)
from speechbrain_eres2net.evaluation.diarization import Diarizer

from .driver import render, run_parts, skipped, table
from .measure import REALSPK, has_realspk, run_isolated, set_threads

SECTION = "diarization"
WINDOWS = ((1.5, 0.75), (2.0, 1.0), (3.0, 1.5))
P_SAME = (0.5, 0.9, 0.99, 0.999)
PVALS = (0.05, 0.1, 0.2, 0.3, 0.5)
SPEAKERLAB_PVALS = (0.012, 0.032, 0.1, 0.2)
# (tuning conversations, test conversations, speed conversations, meeting
# minutes (short, long)) by --quick.
SIZES = {False: (24, 24, 6, (5.0, 60.0)), True: (3, 4, 1, (0.5, 1.5))}

ACCURACY_ROWS = table(
    """
    DER, collar 0.25 s, unknown speaker count
        der / anchor_der, % DER, <= 0.85
        {n_test} test conversations ({minutes:.0f} min); ours: {ours_setting};
        reference: the better anchor, {anchor_name} ({anchor_setting}); other
        anchor {other_name} {other_der:.2f} %; oracle count, ours {oracle_der:.2f} %;
        ours: confusion {confusion:.2f}, missed {missed:.2f}, false alarm
        {false_alarm:.2f}; {anchor_name}: {anchor_confusion:.2f}, {anchor_missed:.2f},
        {anchor_false_alarm:.2f}
    DER, no collar
        der0 / anchor_der0, % DER, lower
        overlap scored; {anchor_name} as above
    JER, collar 0.25 s
        jer / anchor_jer, % JER, lower
        pyannote.metrics JaccardErrorRate; {anchor_name}
    speaker count exact
        count_exact / anchor_count_exact, % recordings, >= 80 absolute
        true counts 2-5; ours {count_detail}; {anchor_name}
    one-speaker recordings found to hold one speaker
        singles / anchor_singles, % recordings, higher
        {n_singles} recordings, each the 8 utterances of one realspk dev speaker
        0.5 s apart (23-45 s); SpeechBrain's clustering never answers fewer than 2
    DER of the overlap conversations
        der_overlap / anchor_der_overlap, % DER, lower
        5-10 % of their speech overlapped: one speaker per instant is output,
        the other counted as missed
    DER of the noisy conversations
        der_noisy / anchor_der_noisy, % DER, lower
        10 s noise gaps and 15-25 dB background noise
    """
)
SPEED_ROWS = table(
    """
    real-time factor, {what}
        rtf, x real time, <= 0.05 absolute
        Diarizer.diarize on {n} test conversations ({audio_min:.1f} min), {threads}
        threads, model loaded; embedding {embed_share:.0f} % of the time
    """
)
MEMORY_ROWS = table(
    """
    peak RSS, {long_min:.0f}-minute meeting vs {short_min:.0f}-minute
        long_mb / short_mb, MiB, <= 1.2
        fresh process each, Diarizer.diarize with the benchmark's model;
        {long_windows} windows vs {short_windows}; base (imports, model)
        {base_mb:.0f} MiB
    """
)


def speechbrain_clustering(pval: float) -> Callable:
    """SpeechBrain's AMI spectral clustering (cosine affinity), as its recipe
    calls it: ``Spec_Clust_unorm(min_num_spkrs=2, max_num_spkrs=10)``."""
    from speechbrain.integrations.alignment.diarization import Spec_Clust_unorm

    def cluster(embeddings: np.ndarray, seconds, num: Optional[int]) -> np.ndarray:
        if embeddings.shape[0] < 3:  # its eigengap needs a few windows
            return np.zeros(embeddings.shape[0], dtype=int)
        clustering = Spec_Clust_unorm(min_num_spkrs=2, max_num_spkrs=10)
        clustering.do_spec_clust(embeddings.astype(np.float64), num, pval)
        return np.asarray(clustering.labels_)

    return cluster


def speakerlab_clustering(pval: float) -> Callable:
    """3D-Speaker's back end with its diarization config but ``pval``."""
    import sys

    from .measure import TESTS

    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from oracle import official_clustering

    module = official_clustering()

    def cluster(embeddings: np.ndarray, seconds, num: Optional[int]) -> np.ndarray:
        clustering = module.CommonClustering(
            "spectral",
            mer_cos=0.8,
            min_num_spks=1,
            max_num_spks=15,
            min_cluster_size=4,
            oracle_num=num,
            pval=pval,
        )
        return np.asarray(clustering(embeddings.astype(np.float64), speaker_num=num))

    return cluster


def ours(kind: str, value, calibration, threshold) -> Callable:
    """Our clustering ``kind`` (``ahc``: ``value`` is p_same; ``spectral``:
    pval; ``spectral-ahc``: (pval, p_same)) as the benchmark calls every
    clustering."""
    if kind == "ahc":
        clustering = LLRClustering(calibration, threshold, value)
    elif kind == "spectral":
        clustering = SpectralClustering(pval=value)
    else:
        clustering = SpectralLLRClustering(calibration, value[1], value[0])

    def cluster(embeddings: np.ndarray, seconds, num: Optional[int]) -> np.ndarray:
        return clustering(embeddings, seconds, num)

    return cluster


def families(calibration, threshold) -> dict[str, list[tuple[str, Callable]]]:
    """Family -> its (setting, clustering) candidates (windows apart)."""
    out = {
        "ours AHC": [
            (f"p_same {p}", ours("ahc", p, calibration, threshold)) for p in P_SAME
        ],
        "ours spectral": [
            (f"pval {p}", ours("spectral", p, None, None)) for p in PVALS
        ],
        "ours spectral-ahc": [
            (f"pval {p}, p_same {q}", ours("spectral-ahc", (p, q), calibration, None))
            for p in PVALS
            for q in P_SAME[:2]
        ],
        "SpeechBrain": [(f"pval {p}", speechbrain_clustering(p)) for p in PVALS],
    }
    try:
        out["3D-Speaker"] = [
            (f"pval {p}", speakerlab_clustering(p)) for p in SPEAKERLAB_PVALS
        ]
    except ImportError as err:  # fastcluster, umap-learn, hdbscan not installed
        out["3D-Speaker"] = []
        out["3D-Speaker unavailable"] = [(str(err), None)]
    return out


class Scores:
    """DER, JER and count accuracy of one clustering over conversations."""

    def __init__(self) -> None:
        from pyannote.metrics.diarization import (
            DiarizationErrorRate,
            JaccardErrorRate,
        )

        self.der = DiarizationErrorRate(collar=0.25, skip_overlap=False)
        self.der0 = DiarizationErrorRate(collar=0.0, skip_overlap=False)
        self.jer = JaccardErrorRate(collar=0.25, skip_overlap=False)
        self.by_kind: dict[str, DiarizationErrorRate] = {}
        self.exact, self.counts = 0, []

    def add(self, conversation, hypothesis) -> None:
        from pyannote.core import Segment, Timeline

        from .conversations import reference_annotation

        reference = reference_annotation(conversation)
        uem = Timeline([Segment(0.0, conversation.duration)])
        self.der(reference, hypothesis, uem=uem)
        self.der0(reference, hypothesis, uem=uem)
        self.jer(reference, hypothesis, uem=uem)
        kind = self.by_kind.setdefault(
            conversation.kind, type(self.der)(collar=0.25, skip_overlap=False)
        )
        kind(reference, hypothesis, uem=uem)
        found = len(hypothesis.labels())
        self.exact += found == len(conversation.speakers)
        self.counts.append((len(conversation.speakers), found))

    def values(self, prefix: str = "") -> dict:
        n = max(len(self.counts), 1)
        values = {
            f"{prefix}der": 100 * abs(self.der),
            f"{prefix}der0": 100 * abs(self.der0),
            f"{prefix}jer": 100 * abs(self.jer),
            f"{prefix}count_exact": 100 * self.exact / n,
        }
        parts = self.der.accumulated_
        total = max(parts["total"], 1e-9)
        for name, key in (
            ("confusion", "confusion"),
            ("missed", "missed detection"),
            ("false_alarm", "false alarm"),
        ):
            values[f"{prefix}{name}"] = 100 * parts[key] / total
        for kind, metric in self.by_kind.items():
            values[f"{prefix}der_{kind}"] = 100 * abs(metric)
        return values


def score(
    diarizer: Diarizer,
    conversations: Sequence,
    windows: dict,
    cluster: Callable,
    oracle: bool = False,
) -> Scores:
    """Scores of ``cluster`` on embedded conversations."""
    scores = Scores()
    for conversation in conversations:
        embedded = windows[conversation.path]
        num = len(conversation.speakers) if oracle else None
        labels = np.asarray(cluster(embedded.embeddings, embedded.seconds, num))
        from speechbrain_eres2net.evaluation.clustering import first_appearance

        result = diarizer.result(conversation.path, embedded, first_appearance(labels))
        scores.add(conversation, result.to_annotation())
    return scores


def accuracy_rows(model: str, folder: Path, tune_n: int, test_n: int) -> list:
    """Part 1 (see the module docstring)."""
    from .conversations import build_conversations

    tune = build_conversations(folder / "tune", tune_n, seed=1)
    test = build_conversations(folder / "test", test_n, seed=0)
    singles = single_speakers(folder / "single", test_n // 2)
    base = Diarizer.from_folder(model)
    threshold = base.embedder.threshold
    embedded: dict[tuple, dict] = {}
    for window, hop in WINDOWS:
        diarizer = Diarizer(
            base.embedder, base.calibration, window_seconds=window, hop_seconds=hop
        )
        embedded[(window, hop)] = {
            c.path: diarizer.embed_windows(c.path) for c in [*tune, *test]
        }
        embedded[(window, hop)].update(
            {path: diarizer.embed_windows(path) for path in singles}
        )
    best: dict[str, tuple] = {}
    for family, candidates in families(base.calibration, threshold).items():
        for setting, cluster in candidates:
            if cluster is None:
                continue
            for window, hop in WINDOWS:
                der = score(base, tune, embedded[(window, hop)], cluster).values()[
                    "der"
                ]
                label = f"{window:g}/{hop:g} s windows, {setting}"
                if family not in best or der < best[family][0]:
                    best[family] = (der, label, cluster, (window, hop))
    results = {}
    for family, (tuned, label, cluster, key) in best.items():
        results[family] = (label, score(base, test, embedded[key], cluster).values())
        results[family][1]["tune_der"] = tuned
        found = [
            len(set(np.asarray(cluster(w.embeddings, w.seconds, None)).tolist()))
            for w in (embedded[key][path] for path in singles)
        ]
        results[family][1]["singles"] = 100 * found.count(1) / len(found)
        results[family][1]["singles_found"] = "/".join(map(str, found))
    ours_name = min(
        ("ours AHC", "ours spectral", "ours spectral-ahc"),
        key=lambda f: best[f][0] if f in best else 1e9,
    )
    anchors = [f for f in ("SpeechBrain", "3D-Speaker") if f in results]
    anchors.sort(key=lambda f: results[f][1]["der"])
    anchor, other = anchors[0], (anchors[1:] or [None])[0]
    _, _, cluster, key = best[ours_name]
    oracle = score(base, test, embedded[key], cluster, oracle=True).values()["der"]
    mine, theirs = results[ours_name][1], results[anchor][1]
    count_detail = ", ".join(
        f"{n}spk {sum(f == n for t, f in s if t == n)}/{sum(t == n for t, _ in s)}"
        for s in [score(base, test, embedded[key], cluster).counts]
        for n in sorted({t for t, _ in s})
    )
    values = {
        **mine,
        **{f"anchor_{k}": v for k, v in theirs.items()},
        "n_test": len(test),
        "minutes": sum(c.duration for c in test) / 60,
        "ours_setting": f"{ours_name}, {results[ours_name][0]}",
        "anchor_name": anchor,
        "anchor_setting": results[anchor][0],
        "other_name": other or "none",
        "other_der": results[other][1]["der"] if other else math.nan,
        "oracle_der": oracle,
        "count_detail": count_detail,
        "n_singles": len(singles),
    }
    rows = render(SECTION, ACCURACY_ROWS, values)
    for family, (label, result) in results.items():
        rows += render(
            SECTION,
            table(
                f"""
                {family}: DER on the test set
                    der, % DER, lower
                    chosen on the tuning set ({len(tune)} conversations, DER there
                    {result["tune_der"]:.2f} %): {label};
                    count exact {result["count_exact"]:.0f} %, JER
                    {result["jer"]:.2f} %; one-speaker recordings: speakers found
                    {result["singles_found"]}
                """
            ),
            result,
        )
    return rows


def single_speakers(folder: Path, count: int) -> list[Path]:
    """Recordings of one speaker each: a realspk dev speaker's utterances
    0.5 s apart (a question the simulated conversations never ask)."""
    import soundfile

    from .measure import dev_speakers

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for speaker, recordings in list(dev_speakers().items())[:count]:
        pause = np.zeros(8000, dtype=np.float32)
        parts = []
        for rel in recordings:
            audio, _ = soundfile.read(REALSPK / "wav" / rel, dtype="float32")
            parts += [audio, pause]
        path = folder / f"{speaker}.wav"
        soundfile.write(path, np.concatenate(parts), 16000)
        paths.append(path)
    return paths


def diarize_timed(diarizer: Diarizer, conversations: Sequence, oracle: bool) -> dict:
    """Seconds of audio and of diarization (and of embedding alone)."""
    audio = total = embedding = 0.0
    for conversation in conversations:
        num = len(conversation.speakers) if oracle else None
        start = time.perf_counter()
        windows = diarizer.embed_windows(conversation.path)
        middle = time.perf_counter()
        diarizer.result(conversation.path, windows, diarizer.cluster(windows, num))
        total += time.perf_counter() - start
        embedding += middle - start
        audio += conversation.duration
    return {
        "rtf": total / audio,
        "audio_min": audio / 60,
        "embed_share": 100 * embedding / total,
    }


def speed_rows(model: str, folder: Path, count: int, threads: int) -> list:
    """Part 2 (see the module docstring)."""
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    from .conversations import build_conversations
    from .extraction import random_model_folder

    conversations = build_conversations(folder / "speed", count, seed=0)
    base = random_model_folder(folder / "base", {}, "ERes2Net-base")
    rows = []
    for what, source, oracle in (
        ("ERes2Net-base (random weights, count given)", base, True),
        ("the benchmark's model", model, False),
    ):
        diarizer = Diarizer(
            SpeakerEmbedder.from_folder(source),
            Diarizer.from_folder(model).calibration,
        )
        diarizer.embed_windows(conversations[0].path)  # warm-up (graph build)
        values = diarize_timed(diarizer, conversations, oracle)
        values.update(what=what, n=len(conversations), threads=threads)
        rows += render(SECTION, SPEED_ROWS, values)
    return rows


def diarize_memory(model: str, path: str) -> dict:
    """Worker: one recording diarized in this process (peak RSS measured)."""
    diarizer = Diarizer.from_folder(model)
    result = diarizer.diarize(path)
    return {"windows": result.windows, "speakers": len(result.speakers)}


def memory_rows(model: str, folder: Path, minutes: tuple, threads: int) -> list:
    """Part 3 (see the module docstring)."""
    from .conversations import build_meeting

    measured = {}
    for name, length in zip(("short", "long"), minutes):
        meeting = build_meeting(folder, length, seed=2)
        measured[name] = run_isolated(
            "benchmarks.diarization:diarize_memory",
            {"model": str(model), "path": str(meeting.path)},
            threads=threads,
        )
    values = {
        "short_min": minutes[0],
        "long_min": minutes[1],
        "short_mb": measured["short"]["peak_rss_mb"],
        "long_mb": measured["long"]["peak_rss_mb"],
        "short_windows": measured["short"]["windows"],
        "long_windows": measured["long"]["windows"],
        "base_mb": measured["long"]["base_rss_mb"],
    }
    return render(SECTION, MEMORY_ROWS, values)


def bench_diarization(args) -> list:
    """Every row; a part that fails leaves a ``section failed`` row. Options:
    ``--diarization-model`` (every part is skipped without one), ``--quick``,
    ``--threads`` (the last count)."""
    tune_n, test_n, speed_n, minutes = SIZES[args.quick]
    model, threads = args.diarization_model, args.thread_counts[-1]
    set_threads(threads)
    name = "simulated realspk conversations"
    if model is None:
        return skipped(SECTION, name, "no model folder given (--diarization-model)")
    if not has_realspk("dev_list.txt"):
        return skipped(SECTION, name, f"{REALSPK} absent")
    parts = [
        ("accuracy", lambda d: accuracy_rows(model, d, tune_n, test_n)),
        ("speed", lambda d: speed_rows(model, d, speed_n, threads)),
        ("memory", lambda d: memory_rows(model, d, minutes, threads)),
    ]
    return run_parts(SECTION, parts)
