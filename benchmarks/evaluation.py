"""Scoring and data-preparation benchmarks.

* metrics: EER + minDCF(0.01) + minDCF(0.05) over synthetic scores with
  :mod:`speechbrain_eres2net.evaluation.metrics` vs ``speechbrain.utils.metric_stats``
  (on a smaller list, which it can handle); trials/s compared.
* data preparation:
  :func:`speechbrain_eres2net.dataio.voxceleb_prepare.prepare_voxceleb` over a
  generated VoxCeleb-shaped tree of tiny wav files vs a naive
  single-threaded ``soundfile.info`` loop over the same files; files/s.

Each measurement runs in a fresh process for its peak RSS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Row, run_isolated

METRICS_SECONDS_TARGET = 10.0
METRICS_MEMORY_TARGET_MB = 1024.0
DATAPREP_FILES_PER_S_TARGET = 2000.0
CACHE = Path(os.environ.get("ERES2NET_BENCH_CACHE", tempfile.gettempdir())) / (
    "eres2net_bench_cache"
)


def synthetic_trials(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scores, 10 % targets, target scores shifted up (EER ~ 16 %)."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.1
    scores = rng.standard_normal(n) + 2.0 * labels
    return scores, labels.astype(np.int8)


def score(n: int, backend: str) -> dict:
    """EER and minDCF at p_target 0.01 and 0.05 over ``n`` trials (worker).

    ``backend`` is ``"ours"`` (:mod:`speechbrain_eres2net.evaluation.metrics`) or
    ``"speechbrain"`` (``speechbrain.utils.metric_stats``, whose ``minDCF``
    is not normalised: it is divided here by ``min(p_target, 1 - p_target)``,
    c_miss = c_fa = 1, to compare).
    """
    scores, labels = synthetic_trials(n)
    if backend == "ours":
        from speechbrain_eres2net.evaluation.metrics import compute_eer, compute_min_dcf

        def eer() -> float:
            return compute_eer(scores, labels)[0]

        def min_dcf(p: float) -> float:
            return compute_min_dcf(scores, labels, p_target=p)[0]

    else:
        import torch
        from speechbrain.utils.metric_stats import EER, minDCF

        positive = torch.from_numpy(scores[labels == 1])
        negative = torch.from_numpy(scores[labels == 0])

        def eer() -> float:
            return float(EER(positive, negative)[0])

        def min_dcf(p: float) -> float:
            return float(minDCF(positive, negative, p_target=p)[0]) / min(p, 1 - p)

    start = time.perf_counter()
    result = {"eer": eer(), "dcf1": min_dcf(0.01), "dcf5": min_dcf(0.05)}
    return {"seconds": time.perf_counter() - start, **result}


def bench_metrics(n: int = 10_000_000, reference_n: int = 5_000) -> list[Row]:
    """Seconds and peak RSS of our metrics on ``n`` trials; SpeechBrain beside.

    SpeechBrain's ``minDCF`` builds a thresholds x trials matrix: measured
    1.3 GB at 5,000 trials, 12.5 GB and 35 s at 20,000, so the reference
    runs at 5,000.
    The agreement of the two on a common size (``reference_n``) is checked
    and given in the note.
    """
    target = "benchmarks.evaluation:score"
    ours = run_isolated(target, {"n": n, "backend": "ours"}, threads=2)
    small = run_isolated(target, {"n": reference_n, "backend": "ours"}, threads=2)
    ref = run_isolated(target, {"n": reference_n, "backend": "speechbrain"}, threads=2)
    diff = max(abs(small[k] - ref[k]) for k in ("eer", "dcf1", "dcf5"))
    ours_rate, ref_rate = n / ours["seconds"], reference_n / ref["seconds"]
    return [
        Row(
            "evaluation",
            f"EER+minDCF(0.01,0.05) {n:,} trials: seconds",
            ours["seconds"],
            None,
            "s",
            target=METRICS_SECONDS_TARGET,
            higher_is_better=False,
            absolute=True,
            note=f"EER {ours['eer']:.4f}",
        ),
        Row(
            "evaluation",
            f"EER+minDCF {n:,} trials: peak RSS above imports",
            ours["peak_rss_mb"] - ours["base_rss_mb"],
            None,
            "MiB",
            target=METRICS_MEMORY_TARGET_MB,
            higher_is_better=False,
            absolute=True,
            note=f"includes the scores and labels; process total "
            f"{ours['peak_rss_mb']:.0f} MiB with torch imported",
        ),
        Row(
            "evaluation",
            f"trials/s: ours {n:,} vs speechbrain.metric_stats {reference_n:,}",
            ours_rate,
            ref_rate,
            "trials/s",
            ours_rate / ref_rate,
            note=f"max |difference| at {reference_n:,}: {diff:.2e}; SpeechBrain "
            f"{ref['seconds']:.2f} s, peak RSS {ref['peak_rss_mb']:.0f} MiB",
        ),
    ]


WAV_RATE = 16000


def _wav_bytes(num_samples: int) -> bytes:
    """A 16-bit mono PCM wav of silence, ``num_samples`` long."""
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer,
        np.zeros(num_samples, dtype=np.int16),
        WAV_RATE,
        format="WAV",
        subtype="PCM_16",
    )
    return buffer.getvalue()


def voxceleb_tree(num_files: int, cache: Path = CACHE) -> Path:
    """A cached VoxCeleb-shaped tree ``wav/idNNNNN/<session>/NNNNN.wav``.

    10 utterances per session, 10 sessions per speaker; files are 0.1 to
    0.5 s of silence (only headers matter). Built once per size, reused.
    """
    root = cache / f"voxtree_{num_files}"
    done = root / ".complete"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    templates = [_wav_bytes(int(WAV_RATE * s)) for s in (0.1, 0.2, 0.3, 0.5)]
    for index in range(num_files):
        speaker, rest = divmod(index, 100)
        session, utterance = divmod(rest, 10)
        folder = root / "wav" / f"id{speaker:05d}" / f"sess{session:02d}"
        if utterance == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{utterance:05d}.wav").write_bytes(templates[index % len(templates)])
    done.touch()
    return root


def prepare_ours(root: str, num_workers: int = 2) -> dict:
    """prepare_voxceleb into a fresh folder (worker function)."""
    from speechbrain_eres2net.dataio.voxceleb_prepare import prepare_voxceleb

    save = tempfile.mkdtemp(prefix="eres2net_prep_")
    try:
        start = time.perf_counter()
        outputs = prepare_voxceleb(root, save, num_workers=num_workers)
        seconds = time.perf_counter() - start
        rows = 0
        for path in outputs.values():
            with open(path) as table:
                rows += sum(1 for _ in table) - 1
    finally:
        shutil.rmtree(save, ignore_errors=True)
    return {"seconds": seconds, "rows": rows}


def prepare_naive(root: str) -> dict:
    """A single-threaded walk + ``soundfile.info`` per file (worker function)."""
    import soundfile

    start = time.perf_counter()
    rows = []
    for folder, _, files in os.walk(Path(root) / "wav"):
        for name in sorted(files):
            if name.endswith(".wav"):
                info = soundfile.info(os.path.join(folder, name))
                rows.append((name, info.frames / info.samplerate))
    return {"seconds": time.perf_counter() - start, "rows": len(rows)}


def bench_dataprep(num_files: int = 100_000) -> list[Row]:
    """prepare_voxceleb vs the naive loop: files/s and peak RSS."""
    start = time.perf_counter()
    root = voxceleb_tree(num_files)
    built = time.perf_counter() - start
    # Interleaved, best of two each: the first pass over a reused tree may
    # read from disk and the next from the page cache.
    runs: dict[str, list[dict]] = {"naive": [], "ours": []}
    for _ in range(2):
        runs["naive"].append(
            run_isolated("benchmarks.evaluation:prepare_naive", {"root": str(root)}, 1)
        )
        runs["ours"].append(
            run_isolated("benchmarks.evaluation:prepare_ours", {"root": str(root)}, 2)
        )
    ours = min(runs["ours"], key=lambda r: r["seconds"])
    naive = min(runs["naive"], key=lambda r: r["seconds"])
    ours_rate = num_files / ours["seconds"]
    naive_rate = num_files / naive["seconds"]
    return [
        Row(
            "dataprep",
            f"prepare_voxceleb {num_files:,} wavs: files/s",
            ours_rate,
            naive_rate,
            "files/s",
            ours_rate / naive_rate,
            DATAPREP_FILES_PER_S_TARGET,
            absolute=True,
            note=f"{ours['rows']:,} CSV rows; reference = single-threaded "
            f"soundfile.info loop; tree built/reused in {built:.0f} s",
        ),
        Row(
            "dataprep",
            f"prepare_voxceleb {num_files:,} wavs: peak RSS above imports",
            ours["peak_rss_mb"] - ours["base_rss_mb"],
            naive["peak_rss_mb"] - naive["base_rss_mb"],
            "MiB",
            note="reference = naive loop",
        ),
    ]
