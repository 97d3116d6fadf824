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

from .driver import render, table
from .measure import run_isolated

METRIC_ROWS = table(
    """
    EER+minDCF(0.01,0.05) {n:,} trials: seconds
        seconds, s, <= 10 absolute
        EER {eer:.4f}
    EER+minDCF {n:,} trials: peak RSS above imports
        work, MiB, <= 1024 absolute
        includes the scores and labels; process total {peak_rss_mb:.0f} MiB with
        torch imported
    trials/s: ours {n:,} vs speechbrain.metric_stats {reference_n:,}
        rate / reference_rate, trials/s
        max |difference| at {reference_n:,}: {diff:.2e}; SpeechBrain
        {reference_s:.2f} s, peak RSS {reference_rss:.0f} MiB
    """
)
DATAPREP_ROWS = table(
    """
    prepare_voxceleb {n:,} wavs: files/s
        rate / naive_rate, files/s, >= 2000 absolute
        {rows:,} CSV rows; reference = single-threaded soundfile.info loop; tree
        built/reused in {built:.0f} s
    prepare_voxceleb {n:,} wavs: peak RSS above imports
        work / naive_work, MiB, lower
        reference = naive loop
    """
)
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


def bench_metrics(args) -> list:
    """Seconds and peak RSS of our metrics on ``--metrics-trials`` trials;
    SpeechBrain beside on at most 5,000, which it can handle (its ``minDCF``
    builds a thresholds x trials matrix: measured 1.3 GB at 5,000 trials, 12.5
    GB and 35 s at 20,000); the two agree on that common size (in the note)."""
    n = args.metrics_trials
    reference_n = min(5_000, n)
    target = "benchmarks.evaluation:score"
    ours = run_isolated(target, {"n": n, "backend": "ours"}, threads=2)
    small = run_isolated(target, {"n": reference_n, "backend": "ours"}, threads=2)
    ref = run_isolated(target, {"n": reference_n, "backend": "speechbrain"}, threads=2)
    values = {**ours, "n": n, "reference_n": reference_n}
    values["diff"] = max(abs(small[k] - ref[k]) for k in ("eer", "dcf1", "dcf5"))
    values["work"] = ours["peak_rss_mb"] - ours["base_rss_mb"]
    values["rate"] = n / ours["seconds"]
    values["reference_rate"] = reference_n / ref["seconds"]
    values["reference_s"], values["reference_rss"] = ref["seconds"], ref["peak_rss_mb"]
    return render("evaluation", METRIC_ROWS, values)


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


def bench_dataprep(args) -> list:
    """prepare_voxceleb vs the naive loop: files/s and peak RSS."""
    num_files = args.dataprep_files
    start = time.perf_counter()
    root = voxceleb_tree(num_files)
    built = time.perf_counter() - start
    # Interleaved, best of two each: the first pass over a reused tree may
    # read from disk and the next from the page cache.
    runs: dict[str, list[dict]] = {"naive": [], "ours": []}
    for _ in range(2):
        kwargs = {"root": str(root)}
        runs["naive"].append(
            run_isolated("benchmarks.evaluation:prepare_naive", kwargs, 1)
        )
        runs["ours"].append(
            run_isolated("benchmarks.evaluation:prepare_ours", kwargs, 2)
        )
    ours = min(runs["ours"], key=lambda r: r["seconds"])
    naive = min(runs["naive"], key=lambda r: r["seconds"])
    values = {"n": num_files, "rows": ours["rows"], "built": built}
    values["rate"], values["naive_rate"] = (
        num_files / ours["seconds"],
        num_files / naive["seconds"],
    )
    values["work"] = ours["peak_rss_mb"] - ours["base_rss_mb"]
    values["naive_work"] = naive["peak_rss_mb"] - naive["base_rss_mb"]
    return render("dataprep", DATAPREP_ROWS, values)
