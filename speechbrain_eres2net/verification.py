"""Speaker-verification evaluation: embeddings, cosine scoring, AS-norm, EER.

The protocol of the official ERes2Net recipe: one embedding per trial
utterance from its full length (batched by length, with exact relative
lengths so batching does not change it), cosine similarity of the raw
embeddings, EER and normalised minDCF (p_target 0.01 and 0.05, unit costs).
Optionally, adaptive s-norm (AS-norm) against a cohort of training-speaker
embeddings is scored too.

Outputs of :func:`evaluate_trials` in ``output_dir`` (each written
atomically): ``scores.txt`` (``enrol test label score [asnorm_score]``),
``results.json``, ``det.png`` and ``hist.png``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from .dataprep import (
    find_wav_root,
    missing_trial_files_error,
    preview,
    read_trials,
    read_trials_indexed,
)
from .files import atomic_open, write_text_atomic
from .inference import SpeakerEmbedder
from .metrics import asnorm, cohort_stats, error_curve, verification_metrics

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

__all__ = [
    "embed_csv",
    "embed_utterances",
    "evaluate_trials",
    "load_checkpoint",
    "load_training_hparams",
    "read_trials",
    "run_verification",
    "score_trials",
    "speaker_cohort",
    "trial_utterances",
]

# Rows per block when scoring: bounds memory at ~100k x emb_dim floats.
_SCORE_CHUNK = 100_000


def embed_utterances(
    compute_features: nn.Module,
    mean_var_norm: Optional[nn.Module],
    embedding_model: nn.Module,
    utterances: Mapping[str, PathLike],
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = False,
    skip_errors: bool = False,
    batch_seconds: Optional[float] = None,
) -> dict[str, np.ndarray]:
    """Full-length embeddings of audio files, batched by length.

    Files are sorted by duration so that each batch pads little; features
    are computed per utterance and passed with exact relative lengths, so an
    utterance gets the same embedding in any batch (see
    :class:`speechbrain_eres2net.inference.SpeakerEmbedder`).

    Arguments
    ---------
    compute_features : nn.Module
        Waveform front end, (1, samples) -> (1, frames, feats).
    mean_var_norm : nn.Module or None
        SpeechBrain normaliser ``(feats, lengths)``; None for front ends that
        normalise themselves (e.g. ``KaldiFbank(mean_norm=True)``).
    embedding_model : nn.Module
        ``(feats, lengths) -> (batch, 1, emb)``.
    utterances : mapping
        Utterance ID -> audio path.
    batch_size : int
        Most utterances per forward pass.
    device : str
        Torch device.
    progress : bool
        Show a progress bar.
    skip_errors : bool
        Leave out (with a warning) files that cannot be read or are too
        short; by default they are an error.
    batch_seconds : float, optional
        Most padded audio seconds per forward pass; None: the device's
        default (:data:`speechbrain_eres2net.inference.BATCH_SECONDS`).

    Returns
    -------
    dict
        Utterance ID -> float32 (emb,) embedding.

    Example
    -------
    >>> import tempfile, soundfile
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> d = Path(tempfile.mkdtemp())
    >>> wav = np.random.default_rng(0).normal(size=8000) * 0.1
    >>> soundfile.write(d / "a.wav", wav, 16000)
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> embs = embed_utterances(KaldiFbank(), None, model, {"a": d / "a.wav"})
    >>> embs["a"].shape
    (16,)
    """
    embedder = SpeakerEmbedder(
        compute_features,
        _IdentityNorm() if mean_var_norm is None else mean_var_norm,
        embedding_model,
        device=device,
    )
    by_path, errors = embedder.embed_files(
        [str(p) for p in utterances.values()],
        batch_size=batch_size,
        progress=progress,
        batch_seconds=batch_seconds,
    )
    failed = {uid: errors[str(p)] for uid, p in utterances.items() if str(p) in errors}
    if failed:
        reasons = [f"{utterances[u]}: {r}" for u, r in failed.items()]
        message = (
            f"{len(failed)} utterance(s) could not be embedded: {preview(reasons, 3)}"
        )
        if not skip_errors:
            raise ValueError(message)
        logger.warning(message)
    return {uid: by_path[str(p)] for uid, p in utterances.items() if uid not in failed}


class _IdentityNorm(nn.Module):
    """Stands in for a normaliser: returns the features unchanged."""

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return feats


def embed_csv(
    compute_features: nn.Module,
    mean_var_norm: Optional[nn.Module],
    embedding_model: nn.Module,
    csv_path: PathLike,
    max_per_speaker: Optional[int] = None,
    seed: int = 1234,
    **kwargs,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embeddings of the utterances of a SpeechBrain CSV (full files).

    Reads the ``ID``, ``wav`` and ``spk_id`` columns (ours or SpeechBrain's
    ``voxceleb_prepare`` CSVs; chunk rows of one file are embedded once).
    Unreadable files are skipped with a warning.

    Arguments
    ---------
    compute_features, mean_var_norm, embedding_model
        As in :func:`embed_utterances`.
    csv_path : path
        CSV with ``ID``, ``wav`` and ``spk_id`` columns.
    max_per_speaker : int, optional
        Embed at most this many files per speaker (a random, seeded choice),
        e.g. to build an AS-norm cohort from a large training set.
    seed : int
        Seed of that choice.
    **kwargs
        Passed to :func:`embed_utterances` (batch_size, device, progress).

    Returns
    -------
    embeddings : dict
        Audio path -> embedding.
    speakers : dict
        Audio path -> speaker ID.

    Example
    -------
    >>> import tempfile, soundfile
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> d = Path(tempfile.mkdtemp())
    >>> soundfile.write(d / "a.wav", np.random.default_rng(0).normal(size=4000), 16000)
    >>> _ = (d / "t.csv").write_text(f"ID,duration,wav,start,stop,spk_id\\n"
    ...                              f"a,0.25,{d / 'a.wav'},0,4000,s1\\n")
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> embs, spk = embed_csv(KaldiFbank(), None, model, d / "t.csv")
    >>> list(spk.values()), next(iter(embs.values())).shape
    (['s1'], (16,))
    """
    speakers = read_csv_speakers(csv_path)
    if max_per_speaker is not None:
        speakers = _subsample_per_speaker(speakers, max_per_speaker, seed)
    embeddings = embed_utterances(
        compute_features,
        mean_var_norm,
        embedding_model,
        {path: path for path in speakers},
        skip_errors=True,
        **kwargs,
    )
    return embeddings, {p: speakers[p] for p in embeddings}


def read_csv_speakers(csv_path: PathLike) -> dict[str, str]:
    """Audio path -> speaker of each distinct file of a SpeechBrain CSV.

    Example
    -------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("ID,duration,wav,start,stop,spk_id\\n"
    ...                  "u1_0_1,1,/a.wav,0,1,s1\\nu1_1_2,1,/a.wav,1,2,s1\\n")
    >>> read_csv_speakers(p)
    {'/a.wav': 's1'}
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV file not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"wav", "spk_id"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{csv_path} lacks column(s) {sorted(missing)}; expected "
                "ID,duration,wav,start,stop,spk_id"
            )
        return {row["wav"]: row["spk_id"] for row in reader}


def _subsample_per_speaker(
    speakers: dict[str, str], max_per_speaker: int, seed: int
) -> dict[str, str]:
    by_speaker: dict[str, list[str]] = {}
    for path, spk in speakers.items():
        by_speaker.setdefault(spk, []).append(path)
    rng = np.random.default_rng(seed)
    kept: dict[str, str] = {}
    for spk in sorted(by_speaker):
        paths = sorted(by_speaker[spk])
        if len(paths) > max_per_speaker:
            paths = [
                paths[i]
                for i in sorted(rng.choice(len(paths), max_per_speaker, replace=False))
            ]
        kept.update((p, spk) for p in paths)
    return kept


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def speaker_cohort(
    embeddings: Mapping[str, np.ndarray], speakers: Mapping[str, str]
) -> np.ndarray:
    """AS-norm cohort: one unit-length mean embedding per speaker.

    Speaker means (of length-normalised embeddings) rather than all training
    utterances keep the top-k from being filled by many utterances of one
    similar speaker, and make the cohort small (as in WeSpeaker's recipe).

    Example
    -------
    >>> e = {"a": np.array([1.0, 0]), "b": np.array([0.0, 2]), "c": np.array([3.0, 0])}
    >>> cohort = speaker_cohort(e, {"a": "s1", "b": "s1", "c": "s2"})
    >>> cohort.astype(float).round(3).tolist()
    [[0.707, 0.707], [1.0, 0.0]]
    """
    ids = [i for i in embeddings if i in speakers]
    if not ids:
        raise ValueError("no embeddings with a speaker label to build a cohort from")
    names, index = np.unique([speakers[i] for i in ids], return_inverse=True)
    unit = _unit_rows(
        np.stack([np.asarray(embeddings[i], dtype=np.float64) for i in ids])
    )
    sums = np.zeros((len(names), unit.shape[1]))
    np.add.at(sums, index, unit)
    return _unit_rows(sums).astype(np.float32)


def _unit_embeddings(
    embeddings: Mapping[str, np.ndarray], names: Sequence[str]
) -> np.ndarray:
    """(len(names), emb) length-normalised embeddings; clear error if absent."""
    missing = [n for n in names if n not in embeddings]
    if missing:
        raise KeyError(
            f"no embedding for {len(missing)} trial utterance(s): {preview(missing)}"
        )
    return _unit_rows(
        np.stack([np.asarray(embeddings[n], dtype=np.float32) for n in names])
    )


def _rowwise_dot(unit: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.empty(len(left), dtype=np.float64)
    for s in range(0, len(left), _SCORE_CHUNK):
        e = slice(s, s + _SCORE_CHUNK)
        out[e] = np.einsum("ij,ij->i", unit[left[e]], unit[right[e]])
    return out


def score_trials(
    embeddings: Mapping[str, np.ndarray], enrol: Sequence[str], test: Sequence[str]
) -> np.ndarray:
    """Cosine similarity of each (enrol, test) pair of embeddings.

    Example
    -------
    >>> e = {"a": np.array([1.0, 0]), "b": np.array([1.0, 1]), "c": np.array([0.0, 3])}
    >>> score_trials(e, ["a", "a"], ["b", "c"]).round(4).tolist()
    [0.7071, 0.0]
    """
    index = {name: i for i, name in enumerate(dict.fromkeys([*enrol, *test]))}
    unit = _unit_embeddings(embeddings, list(index))
    left = np.array([index[n] for n in enrol], dtype=np.int64)
    right = np.array([index[n] for n in test], dtype=np.int64)
    return _rowwise_dot(unit, left, right)


def _asnorm_scores(
    scores: np.ndarray,
    unit: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    cohort: np.ndarray,
    top_k: int,
) -> np.ndarray:
    """AS-norm with cohort statistics computed once per distinct utterance."""
    cohort = _unit_rows(np.asarray(cohort, dtype=np.float32))
    if cohort.ndim != 2 or cohort.shape[1] != unit.shape[1]:
        raise ValueError(
            f"cohort must be (n_cohort, {unit.shape[1]}), got {tuple(cohort.shape)}"
        )
    mean = np.empty(len(unit))
    std = np.empty(len(unit))
    rows = max(1, 20_000_000 // max(1, len(cohort)))  # ~80 MB of scores per block
    for s in range(0, len(unit), rows):
        mean[s : s + rows], std[s : s + rows] = cohort_stats(
            unit[s : s + rows] @ cohort.T, top_k
        )
    return asnorm(scores, (mean[left], std[left]), (mean[right], std[right]))


def evaluate_trials(
    embeddings: Mapping[str, np.ndarray],
    trials_file: PathLike,
    output_dir: PathLike,
    cohort: Optional[np.ndarray] = None,
    top_k: int = 300,
    plots: bool = True,
) -> dict:
    """Scores a trial list and writes scores, metrics and plots.

    Arguments
    ---------
    embeddings : mapping
        Utterance ID (the path as written in the trial list) -> embedding.
    trials_file : path
        VoxCeleb-format trial list (see :func:`read_trials`).
    output_dir : path
        Receives ``scores.txt``, ``results.json``, ``det.png``, ``hist.png``.
    cohort : np.ndarray, optional
        (n_cohort, emb) AS-norm cohort, e.g. from :func:`speaker_cohort`;
        None scores raw cosine only (the official protocol).
    top_k : int
        AS-norm cohort size per utterance.
    plots : bool
        Write the DET curve and score histogram (needs matplotlib).

    Returns
    -------
    dict
        ``eer`` (fraction), ``eer_threshold``, ``min_dcf_0.01``,
        ``min_dcf_0.05``, ``n_trials`` (and target/non-target counts) of the
        cosine scores; with a cohort also ``asnorm``: the same metrics of the
        normalised scores plus ``top_k`` and ``cohort_size``.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "t.txt").write_text("1 a b\\n0 a c\\n1 c d\\n0 b d\\n")
    >>> e = {"a": np.array([1.0, 0]), "b": np.array([0.9, 0.1]),
    ...      "c": np.array([0.0, 1]), "d": np.array([0.2, 1])}
    >>> r = evaluate_trials(e, d / "t.txt", d / "out", plots=False)
    >>> r["eer"], r["n_trials"], sorted(p.name for p in (d / "out").iterdir())
    (0.0, 4, ['results.json', 'scores.txt'])
    """
    labels, names, left, right = read_trials_indexed(trials_file)
    unit = _unit_embeddings(embeddings, names)
    scores = _rowwise_dot(unit, left, right)
    results = verification_metrics(scores, labels)
    results["trials_file"] = str(trials_file)
    columns = [scores]
    normed = None
    if cohort is not None:
        normed = _asnorm_scores(scores, unit, left, right, cohort, top_k)
        results["asnorm"] = verification_metrics(normed, labels)
        results["asnorm"].update(top_k=int(top_k), cohort_size=int(len(cohort)))
        columns.append(normed)

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_scores(out / "scores.txt", names, left, right, labels, columns)
    write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    if plots:
        from .plots import plot_det, plot_histogram

        curves = {"cosine": error_curve(scores, labels)}
        if normed is not None:
            curves["AS-norm"] = error_curve(normed, labels)
        plot_det(curves, out / "det.png")
        plot_histogram(scores, labels, out / "hist.png")
    logger.info(
        "EER %.3f%%, minDCF(0.01) %.4f on %d trials; results in %s",
        100 * results["eer"],
        results["min_dcf_0.01"],
        results["n_trials"],
        out,
    )
    return results


def _write_scores(
    path: Path,
    names: Sequence[str],
    left: np.ndarray,
    right: np.ndarray,
    labels: np.ndarray,
    columns: Sequence[np.ndarray],
) -> None:
    """``enrol test label score...`` lines, formatted a block at a time."""
    line = "{} {} {}" + " {:.6f}" * len(columns) + "\n"
    with atomic_open(path, "w", encoding="utf-8") as f:
        for start in range(0, len(labels), _SCORE_CHUNK):
            part = slice(start, start + _SCORE_CHUNK)
            fields = [
                map(names.__getitem__, left[part].tolist()),
                map(names.__getitem__, right[part].tolist()),
                labels[part].tolist(),
                *(c[part].tolist() for c in columns),
            ]
            f.write("".join(map(line.format, *fields)))


def trial_utterances(trials_file: PathLike, data_folder: PathLike) -> dict[str, Path]:
    """Trial utterance ID -> audio path under ``<data_folder>/wav``.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "wav" / "s" / "x").mkdir(parents=True)
    >>> for n in ("1", "2"):
    ...     _ = (d / "wav" / "s" / "x" / f"{n}.wav").write_bytes(b"")
    >>> _ = (d / "t.txt").write_text("1 s/x/1.wav s/x/2.wav\\n")
    >>> sorted(trial_utterances(d / "t.txt", d))
    ['s/x/1.wav', 's/x/2.wav']
    """
    names = read_trials_indexed(trials_file)[1]
    root = find_wav_root(data_folder)
    utterances = {u: root / u for u in sorted(names)}
    missing = [u for u, p in utterances.items() if not p.is_file()]
    if missing:
        raise missing_trial_files_error(missing, trials_file, [root])
    return utterances


def load_checkpoint(
    checkpoint_folder: PathLike,
    embedding_model: nn.Module,
    mean_var_norm: Optional[nn.Module] = None,
) -> Path:
    """Loads the newest training checkpoint into the embedding modules.

    Reads the ``embedding_model`` (required) and ``normalizer`` (if saved)
    recoverables of a SpeechBrain ``Checkpointer`` folder (the training
    YAML's ``save_folder``, holding ``CKPT+*`` folders).

    Returns
    -------
    Path
        The checkpoint folder that was loaded.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> from speechbrain_eres2net import ERes2Net
    >>> folder = tempfile.mkdtemp()
    >>> trained = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1])
    >>> _ = Checkpointer(folder, {"embedding_model": trained}).save_checkpoint()
    >>> fresh = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1])
    >>> _ = load_checkpoint(folder, fresh)
    >>> bool(torch.equal(fresh.stem[0].weight, trained.stem[0].weight))
    True
    """
    from speechbrain.utils.checkpoints import Checkpointer

    folder = Path(checkpoint_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {folder}")
    recoverables = {"embedding_model": embedding_model}
    if mean_var_norm is not None:
        recoverables["normalizer"] = mean_var_norm
    # Partial load: a normaliser with sentence statistics may not be saved.
    checkpointer = Checkpointer(folder, recoverables, allow_partial_load=True)
    checkpoint = checkpointer.find_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError(f"no CKPT+* checkpoint in {folder}")
    if "embedding_model" not in checkpoint.paramfiles:
        raise ValueError(f"checkpoint {checkpoint.path} has no embedding_model")
    checkpointer.load_checkpoint(checkpoint)
    return Path(checkpoint.path)


def _embedding_modules(hparams: Mapping, device: str) -> tuple:
    """(compute_features, mean_var_norm, embedding_model) with trained weights."""
    if hparams.get("pretrained_folder"):
        embedder = SpeakerEmbedder.from_folder(
            hparams["pretrained_folder"], device=device, fast=False
        )
        return (
            embedder.compute_features,
            embedder.mean_var_norm,
            embedder.embedding_model,
        )
    source = hparams
    checkpoint_folder = hparams.get("checkpoint_folder")
    if hparams.get("train_hparams"):
        source = load_training_hparams(
            hparams["train_hparams"],
            hparams["data_folder"],
            hparams.get("train_overrides") or {},
        )
        checkpoint_folder = checkpoint_folder or source.get("save_folder")
    if not checkpoint_folder:
        raise ValueError(
            "set checkpoint_folder (a training save folder with CKPT+* folders), "
            "train_hparams (the training YAML) or pretrained_folder (a model folder)"
        )
    modules = (
        source["compute_features"],
        source.get("mean_var_norm"),
        source["embedding_model"],
    )
    loaded = load_checkpoint(checkpoint_folder, modules[2], modules[1])
    logger.info("Loaded %s", loaded)
    return modules


def load_training_hparams(
    path: PathLike, data_folder: PathLike, overrides: Mapping
) -> dict:
    """Loads a training YAML for its front end, normaliser and model.

    Lets any model trained by the recipe (ERes2Net, ECAPA-TDNN, ...) be
    evaluated with exactly its training definitions.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "train.yaml"
    >>> _ = path.write_text("data_folder: !PLACEHOLDER\\nn_mels: 80\\n")
    >>> load_training_hparams(path, "/data", {"n_mels": 40})["n_mels"]
    40
    """
    from hyperpyyaml import load_hyperpyyaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training hparams file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return load_hyperpyyaml(f, {"data_folder": str(data_folder), **overrides})


def run_verification(hparams: Mapping, device: Optional[str] = None) -> dict:
    """The verification recipe: model, trial embeddings, cohort, scoring.

    Arguments
    ---------
    hparams : mapping
        Loaded ``hparams/verification.yaml``: ``data_folder``,
        ``verification_file``, ``output_folder``; the model from
        ``pretrained_folder`` (a model folder), or from ``train_hparams``
        (the training YAML, whose ``save_folder`` holds the checkpoints
        unless ``checkpoint_folder`` is given), or from ``checkpoint_folder``
        with this YAML's own ``compute_features``, ``mean_var_norm`` and
        ``embedding_model``; optional ``cohort_csv``,
        ``cohort_utts_per_speaker`` and ``top_k`` (AS-norm), ``batch_size``,
        ``batch_seconds``, ``plots``.
    device : str, optional
        Overrides ``hparams["device"]``.

    Returns
    -------
    dict
        The results of :func:`evaluate_trials`.
    """
    device = device or hparams.get("device", "cpu")
    modules = _embedding_modules(hparams, device)
    options = {
        "batch_size": int(hparams.get("batch_size", 16)),
        "batch_seconds": hparams.get("batch_seconds"),
        "device": device,
        "progress": bool(hparams.get("progress", True)),
    }
    trials = hparams["verification_file"]
    utterances = trial_utterances(trials, hparams["data_folder"])
    embeddings = embed_utterances(*modules, utterances, **options)
    cohort = None
    if hparams.get("cohort_csv"):
        cohort_embeddings, speakers = embed_csv(
            *modules,
            hparams["cohort_csv"],
            max_per_speaker=hparams.get("cohort_utts_per_speaker"),
            seed=int(hparams.get("seed", 1234)),
            **options,
        )
        cohort = speaker_cohort(cohort_embeddings, speakers)
    return evaluate_trials(
        embeddings,
        trials,
        hparams["output_folder"],
        cohort=cohort,
        top_k=int(hparams.get("top_k", 300)),
        plots=bool(hparams.get("plots", True)),
    )
