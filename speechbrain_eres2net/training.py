"""Training pieces of the ERes2Net recipe for ``speechbrain.Brain``.

The official 3D-Speaker VoxCeleb recipe (``egs/voxceleb/sv-eres2net``) trains
on random 3 s crops, treats speed-perturbed audio as new speakers, corrupts
80 % of the crops with MUSAN noise and/or RIR reverberation, and schedules
both the learning rate (linear warm-up, then half-cosine) and the AAM margin
(0, then an exponential ramp) per iteration. This module holds those pieces
as small classes that a SpeechBrain YAML instantiates and SpeechBrain's
``Checkpointer`` saves, plus the ``SpeakerBrain`` that uses them.

Randomness of the data pipeline (crop position, speed) is drawn from a
generator seeded by (seed, epoch, item id), so a run restored from an
intra-epoch checkpoint sees the same crops as an uninterrupted one.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from torch import nn
from tqdm import tqdm

from .files import write_text_atomic

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac")


# --------------------------------------------------------------------------
# Schedules


@register_checkpoint_hooks
class Recoverable:
    """Saves and restores the attributes named in ``state_keys``.

    Subclasses become SpeechBrain checkpoint recoverables.
    """

    state_keys: tuple[str, ...] = ()

    @mark_as_saver
    def _save(self, path: str) -> None:
        torch.save({key: getattr(self, key) for key in self.state_keys}, path)

    @mark_as_loader
    def _recover(self, path: str, end_of_epoch: bool = False) -> None:
        del end_of_epoch
        for key, value in torch.load(path).items():
            setattr(self, key, value)


class ProgressSchedule(Recoverable):
    """A value that is a function of training progress in (fractional) epochs.

    Subclasses define :meth:`value`. Calling the schedule records the
    progress and value, which the checkpointer saves, so a restored run can
    report where it stopped.
    """

    state_keys = ("progress", "current")

    def __init__(self) -> None:
        self.progress = 0.0
        self.current = self.value(0.0)

    def value(self, progress: float) -> float:
        """The scheduled value after ``progress`` epochs."""
        raise NotImplementedError

    def advance(self, progress: float) -> float:
        """Records ``progress`` and returns the value there."""
        self.progress = float(progress)
        self.current = self.value(self.progress)
        return self.current


class WarmupCosineLR(ProgressSchedule):
    """Linear warm-up, then half-cosine decay, evaluated per iteration.

    The official recipe warms up from ``lr_start`` to ``lr_max`` over
    ``warmup_epochs`` and decays to ``lr_min`` by ``total_epochs``.

    Arguments
    ---------
    lr_max : float
        Peak learning rate (end of warm-up).
    lr_min : float
        Final learning rate.
    warmup_epochs : float
        Length of the linear warm-up.
    total_epochs : float
        Epoch at which the cosine reaches ``lr_min``.
    lr_start : float, optional
        Learning rate at step 0; defaults to ``lr_min``.

    Example
    -------
    >>> sched = WarmupCosineLR(0.2, 5e-5, warmup_epochs=5, total_epochs=70)
    >>> round(sched.value(0), 6), sched.value(5), round(sched.value(70), 6)
    (5e-05, 0.2, 5e-05)
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> round(sched(opt, 2.5), 4), round(opt.param_groups[0]["lr"], 4)
    (0.1, 0.1)
    """

    def __init__(
        self,
        lr_max: float,
        lr_min: float,
        warmup_epochs: float,
        total_epochs: float,
        lr_start: Optional[float] = None,
    ) -> None:
        if total_epochs <= warmup_epochs:
            raise ValueError(
                f"WarmupCosineLR: total_epochs ({total_epochs}) must exceed "
                f"warmup_epochs ({warmup_epochs})"
            )
        self.lr_max = lr_max
        self.lr_min = lr_min
        self.lr_start = lr_min if lr_start is None else lr_start
        self.warmup_epochs = warmup_epochs
        self.total_epochs = total_epochs
        super().__init__()

    def value(self, progress: float) -> float:
        """Learning rate after ``progress`` epochs."""
        if progress < self.warmup_epochs:
            frac = progress / self.warmup_epochs
            return self.lr_start + (self.lr_max - self.lr_start) * frac
        frac = (progress - self.warmup_epochs) / (
            self.total_epochs - self.warmup_epochs
        )
        frac = min(1.0, frac)
        cosine = 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.lr_min + (self.lr_max - self.lr_min) * cosine

    def __call__(self, optimizer: torch.optim.Optimizer, progress: float) -> float:
        """Sets the learning rate of every parameter group; returns it."""
        lr = self.advance(progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


class MarginSchedule(ProgressSchedule):
    """The AAM margin: constant, a ramp, then constant again.

    Before ``start_epoch`` the margin is ``margin_start``; from
    ``end_epoch`` on it is ``margin_end``. In between, with ``t`` the
    fraction of the ramp, the official "exp" curve is
    ``start + (end - start) * (1 - 10 ** (-3 t))``; "linear" is also offered.

    Arguments
    ---------
    margin_end : float
        Margin after the ramp.
    start_epoch : float
        Start of the ramp.
    end_epoch : float
        End of the ramp.
    margin_start : float
        Margin before the ramp.
    curve : str
        "exp" (official) or "linear".

    Example
    -------
    >>> sched = MarginSchedule(0.3, start_epoch=20, end_epoch=50)
    >>> sched.value(19.9), sched.value(50)
    (0.0, 0.3)
    >>> round(sched.value(23), 3)
    0.15
    >>> fixed = MarginSchedule(0.5, start_epoch=0, end_epoch=0)
    >>> fixed.value(0), fixed.value(3.2)
    (0.5, 0.5)
    """

    def __init__(
        self,
        margin_end: float,
        start_epoch: float,
        end_epoch: float,
        margin_start: float = 0.0,
        curve: str = "exp",
    ) -> None:
        if curve not in ("exp", "linear"):
            raise ValueError(
                f"MarginSchedule: curve must be exp or linear, not {curve!r}"
            )
        if end_epoch < start_epoch:
            raise ValueError(
                f"MarginSchedule: end_epoch ({end_epoch}) precedes start_epoch "
                f"({start_epoch})"
            )
        self.margin_end = margin_end
        self.margin_start = margin_start
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.curve = curve
        super().__init__()

    def value(self, progress: float) -> float:
        """Margin after ``progress`` epochs."""
        if progress >= self.end_epoch:
            return self.margin_end
        if progress < self.start_epoch:
            return self.margin_start
        frac = (progress - self.start_epoch) / (self.end_epoch - self.start_epoch)
        ratio = 1.0 - 10.0 ** (-3.0 * frac) if self.curve == "exp" else frac
        return self.margin_start + (self.margin_end - self.margin_start) * ratio

    def __call__(self, loss: ArcMarginLoss, progress: float) -> float:
        """Sets the margin of ``loss``; returns it."""
        margin = self.advance(progress)
        loss.set_margin(margin)
        return margin


# --------------------------------------------------------------------------
# Loss


class ArcMarginLoss(nn.Module):
    """Additive angular margin (AAM) softmax cross-entropy on cosines.

    The target logit becomes ``cos(theta + m)`` where ``cos(theta) >
    cos(pi - m)``, else ``cos(theta) - (1 + cos(pi - m))`` (3D-Speaker's
    ``ArcMarginLoss``, easy_margin False), all logits are scaled, and the
    cross-entropy is averaged over the batch. The margin can be changed
    during training (see :class:`MarginSchedule`).

    Arguments
    ---------
    scale : float
        Logit scale ``s``.
    margin : float
        Initial margin ``m`` in radians.
    easy_margin : bool
        Use ``cos(theta + m)`` only where ``cos(theta) > 0``.

    Example
    -------
    >>> loss = ArcMarginLoss(scale=32, margin=0.2)
    >>> cosines = torch.tensor([[[0.3, 0.2, -0.2]]])
    >>> round(float(loss(cosines, torch.tensor([[0]]))), 3)
    3.102
    >>> loss.set_margin(0.0)
    >>> round(float(loss(cosines, torch.tensor([[0]]))), 3)
    0.04
    """

    def __init__(
        self, scale: float = 32.0, margin: float = 0.0, easy_margin: bool = False
    ) -> None:
        super().__init__()
        self.scale = scale
        self.easy_margin = easy_margin
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        """Changes the angular margin."""
        self.margin = float(margin)
        self.cos_m = math.cos(self.margin)
        self.sin_m = math.sin(self.margin)
        self.threshold = math.cos(math.pi - self.margin)
        self.fallback = 1.0 + math.cos(math.pi - self.margin)

    def forward(
        self,
        cosines: torch.Tensor,
        targets: torch.Tensor,
        length: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Computes the loss.

        Arguments
        ---------
        cosines : torch.Tensor
            (batch, classes) or (batch, 1, classes) cosine similarities.
        targets : torch.Tensor
            (batch,) or (batch, 1) class indices.
        length : torch.Tensor, optional
            Ignored (SpeechBrain's loss signature).

        Returns
        -------
        torch.Tensor
            Mean cross-entropy.
        """
        del length
        cosines = cosines.reshape(cosines.shape[0], -1).float()
        targets = targets.reshape(-1).long()
        if targets.shape[0] != cosines.shape[0]:
            raise ValueError(
                f"ArcMarginLoss: {targets.shape[0]} targets for "
                f"{cosines.shape[0]} outputs"
            )
        sine = torch.sqrt((1.0 - cosines.pow(2)).clamp(min=0.0))
        phi = cosines * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosines > 0, phi, cosines)
        else:
            phi = torch.where(cosines > self.threshold, phi, cosines - self.fallback)
        one_hot = F.one_hot(targets, cosines.shape[1]).to(cosines.dtype)
        logits = self.scale * (one_hot * phi + (1.0 - one_hot) * cosines)
        return F.cross_entropy(logits, targets)


# --------------------------------------------------------------------------
# Random state


@register_checkpoint_hooks
class RandomState:
    """Saves and restores the global RNGs (torch, numpy, random).

    On-the-fly augmentation in the training loop draws from the global
    torch generator; checkpointing it makes a resumed run draw the same
    numbers as an uninterrupted one.

    Example
    -------
    >>> state = RandomState()
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rng.ckpt")
    >>> state._save(path)
    >>> a = torch.rand(1)
    >>> state._recover(path)
    >>> bool(torch.equal(a, torch.rand(1)))
    True
    """

    @mark_as_saver
    def _save(self, path: str) -> None:
        torch.save(
            {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            path,
        )

    @mark_as_loader
    def _recover(self, path: str, end_of_epoch: bool = False) -> None:
        del end_of_epoch
        state = torch.load(path, weights_only=False)
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])


# --------------------------------------------------------------------------
# Data


def item_generator(seed: int, epoch: int, item_id: str) -> torch.Generator:
    """A generator seeded by (seed, epoch, item), independent of call order.

    Example
    -------
    >>> a = torch.rand(1, generator=item_generator(1, 2, "utt"))
    >>> b = torch.rand(1, generator=item_generator(1, 2, "utt"))
    >>> c = torch.rand(1, generator=item_generator(1, 3, "utt"))
    >>> bool(a == b), bool(a == c)
    (True, False)
    """
    key = f"{seed}:{epoch}:{item_id}".encode()
    return torch.Generator().manual_seed(zlib.crc32(key))


def random_window(available: int, size: int, generator: torch.Generator) -> int:
    """Start of a random window of ``size`` inside ``available`` units.

    Returns 0 when the window does not fit (the caller keeps all there is).

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> all(0 <= random_window(100, 30, g) <= 70 for _ in range(50))
    True
    >>> random_window(20, 30, g)
    0
    """
    if available <= size:
        return 0
    return int(torch.randint(0, available - size + 1, (1,), generator=generator))


def read_segment(path: str, start: int, stop: int) -> torch.Tensor:
    """Reads samples ``[start, stop)`` of the first channel as float32."""
    try:
        data, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise RuntimeError(f"cannot read audio file {path}: {err}") from err
    return torch.from_numpy(np.ascontiguousarray(data[:, 0]))


def change_speed(wav: torch.Tensor, speed: float) -> torch.Tensor:
    """Plays ``wav`` ``speed`` times faster (pitch shifts with it, like sox).

    Example
    -------
    >>> change_speed(torch.zeros(16000), 1.1).shape
    torch.Size([14546])
    """
    if speed == 1.0:
        return wav
    from torchaudio.functional import resample

    # Treating the audio as sampled at speed * fs and resampling to fs is
    # sox's "speed" + "rate"; percent units keep the polyphase filter short.
    return resample(wav, orig_freq=round(speed * 100), new_freq=100)


class EpochClock:
    """The current epoch, shared by the Brain and the data pipelines."""

    def __init__(self) -> None:
        self.epoch = 0


class FeatureCache:
    """Features of whole segments, computed once, for small corpora on CPU.

    With many epochs over a small corpus, computing the fbank once per
    (segment, speed) and cropping frames is far cheaper than recomputing it
    per crop. Mean normalisation is applied per crop in the Brain, as in the
    official recipe; only the framing at crop edges differs.
    """

    def __init__(self, compute_features: nn.Module) -> None:
        self.compute_features = compute_features
        self.feats: dict[tuple[str, int], torch.Tensor] = {}

    @torch.no_grad()
    def fill(
        self,
        rows: Sequence[dict[str, Any]],
        speeds: Sequence[float],
        progress: bool = True,
    ) -> None:
        """Computes features of every row at every speed."""
        todo = [row for row in rows if (row["id"], 0) not in self.feats]
        for row in tqdm(todo, desc="fbank cache", disable=not progress):
            wav = read_segment(row["wav"], int(row["start"]), int(row["stop"]))
            for index, speed in enumerate(speeds):
                signal = change_speed(wav, speed).unsqueeze(0)
                self.feats[(row["id"], index)] = self.compute_features(signal)[0]

    def get(self, item_id: str, speed_index: int) -> torch.Tensor:
        """Features of one segment at one speed, (frames, n_mels)."""
        return self.feats[(item_id, speed_index)]


def read_csv_rows(path: str, data_folder: Optional[str] = None) -> list[dict]:
    """Rows of a SpeechBrain CSV with ``$data_root`` replaced."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    required = {"ID", "wav", "start", "stop", "spk_id"}
    if rows and not required <= set(rows[0]):
        raise ValueError(
            f"{path}: expected SpeechBrain columns {sorted(required)}, "
            f"got {sorted(rows[0])}"
        )
    for row in rows:
        row["id"] = row.pop("ID")
        if data_folder is not None:
            row["wav"] = row["wav"].replace("$data_root", data_folder)
    return rows


def speaker_encoder(train_data: DynamicItemDataset, path: str) -> CategoricalEncoder:
    """Loads or creates the speaker label encoder at ``path``."""
    encoder = CategoricalEncoder()
    sb.utils.distributed.run_on_main(
        encoder.load_or_create,
        kwargs={"path": path, "from_didatasets": [train_data], "output_key": "spk_id"},
    )
    encoder.load_or_create(path=path, from_didatasets=[train_data], output_key="spk_id")
    encoder.expect_len(len(encoder.lab2ind))
    return encoder


def num_classes(hparams: dict, num_speakers: int) -> int:
    """Classifier outputs: one class per (speaker, speed) pair.

    Example
    -------
    >>> num_classes({"speed_perturb": True, "speeds": [1.0, 0.9, 1.1]}, 10)
    30
    >>> num_classes({"speed_perturb": False, "speeds": [1.0, 0.9, 1.1]}, 10)
    10
    """
    return num_speakers * len(active_speeds(hparams))


def active_speeds(hparams: dict) -> list[float]:
    """The speeds used: ``speeds`` with speed perturbation, else ``[1.0]``."""
    if not hparams.get("speed_perturb", False):
        return [1.0]
    speeds = [float(s) for s in hparams["speeds"]]
    if speeds[0] != 1.0:
        raise ValueError(
            f"speeds must start with 1.0 (the original speakers), got {speeds}"
        )
    return speeds


def speed_label(speaker: int, speed_index: int, num_speakers: int) -> int:
    """Class of a speaker at a speed: speed ``i`` is a new speaker ``spk + N i``.

    Example
    -------
    >>> speed_label(3, 0, 10), speed_label(3, 2, 10)
    (3, 23)
    """
    return speaker + num_speakers * speed_index


def build_datasets(
    hparams: dict, progress: bool = True
) -> tuple[DynamicItemDataset, Optional[DynamicItemDataset], CategoricalEncoder]:
    """Training and validation datasets of the recipe, and the label encoder.

    Reads ``train_annotation`` (and ``valid_annotation`` unless it is
    empty/None), SpeechBrain CSVs with ``start``/``stop`` in samples: a crop
    of ``sentence_len`` seconds is taken at random inside each row's segment
    (SpeechBrain's chunked CSVs and our whole-utterance CSVs alike). With
    ``speed_perturb`` a speed is drawn per item, applied before cropping, and
    the label is that of a new speaker. With ``feature_cache`` the fbank of
    each segment is computed once and crops are taken in frames; items then
    provide ``feats`` instead of ``sig``. Every item also provides
    ``spk_label`` (class index).

    Validation items use speed 1.0 and a fixed crop.
    """
    data_folder = hparams.get("data_folder") or ""
    train_rows = read_csv_rows(hparams["train_annotation"], data_folder)
    if not train_rows:
        raise ValueError(f"{hparams['train_annotation']}: no training rows")
    valid_path = hparams.get("valid_annotation")
    valid_rows = read_csv_rows(valid_path, data_folder) if valid_path else []

    def to_dataset(rows: list[dict]) -> DynamicItemDataset:
        return DynamicItemDataset(
            {row["id"]: {k: v for k, v in row.items() if k != "id"} for row in rows}
        )

    train_data = to_dataset(train_rows)
    encoder = speaker_encoder(train_data, hparams["label_encoder_file"])
    num_speakers = len(encoder.lab2ind)
    speeds = active_speeds(hparams)
    sample_rate = hparams["sample_rate"]
    crop_samples = int(round(hparams["sentence_len"] * sample_rate))
    crop_frames = int(round(hparams["sentence_len"] * 100))
    seed = int(hparams.get("seed", 0))
    clock = hparams.setdefault("epoch_clock", EpochClock())

    cache = None
    if hparams.get("feature_cache", False):
        cache = FeatureCache(hparams["compute_features"])
        cache.fill(train_rows + valid_rows, speeds, progress=progress)

    def make_pipeline(train: bool) -> Callable:
        @sb.utils.data_pipeline.takes("id", "wav", "start", "stop", "spk_id")
        @sb.utils.data_pipeline.provides("feats" if cache else "sig", "spk_label")
        def pipeline(item_id, wav, start, stop, spk_id):
            epoch = clock.epoch if train else -1
            gen = item_generator(seed, epoch, item_id)
            index = int(torch.randint(len(speeds), (1,), generator=gen)) if train else 0
            if cache is not None:
                feats = cache.get(item_id, index)
                offset = random_window(feats.shape[0], crop_frames, gen)
                yield feats[offset : offset + crop_frames]
            else:
                start, stop = int(start), int(stop)
                # Read just enough audio for one crop after the speed change.
                need = int(math.ceil(crop_samples * speeds[index])) + 1
                offset = random_window(stop - start, need, gen)
                segment = read_segment(
                    wav, start + offset, min(stop, start + offset + need)
                )
                yield change_speed(segment, speeds[index])[:crop_samples]
            speaker = encoder.lab2ind[spk_id]
            yield torch.tensor([speed_label(speaker, index, num_speakers)])

        return pipeline

    input_key = "feats" if cache else "sig"
    sb.dataio.dataset.add_dynamic_item([train_data], make_pipeline(train=True))
    sb.dataio.dataset.set_output_keys([train_data], ["id", input_key, "spk_label"])
    valid_data = None
    if valid_rows:
        known = [row for row in valid_rows if row["spk_id"] in encoder.lab2ind]
        valid_data = to_dataset(known)
        sb.dataio.dataset.add_dynamic_item([valid_data], make_pipeline(train=False))
        sb.dataio.dataset.set_output_keys([valid_data], ["id", input_key, "spk_label"])
    logger.info(
        "Training on %d segments of %d speakers, %d classes (speeds %s), "
        "%.1f s crops%s",
        len(train_rows),
        num_speakers,
        num_speakers * len(speeds),
        speeds,
        hparams["sentence_len"],
        ", cached features" if cache else "",
    )
    return train_data, valid_data, encoder


def per_process_batch_size(global_batch_size: int, world_size: int) -> int:
    """Batch size of one process for a global batch split over processes.

    Example
    -------
    >>> per_process_batch_size(256, 4)
    64
    """
    if global_batch_size % world_size:
        logger.warning(
            "batch_size %d is not a multiple of the %d processes; each uses %d",
            global_batch_size,
            world_size,
            global_batch_size // world_size,
        )
    return max(1, global_batch_size // world_size)


def dataloader_options(hparams: dict) -> dict:
    """``dataloader_options`` with the global ``batch_size`` split over DDP."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    options = dict(hparams["dataloader_options"])
    options["batch_size"] = per_process_batch_size(hparams["batch_size"], world_size)
    return options


# --------------------------------------------------------------------------
# Augmentation


def write_audio_csv(source: str, csv_path: str) -> str:
    """Returns a SpeechBrain audio CSV for ``source`` (a CSV or a folder).

    A folder is searched recursively for wav/flac files; their list is
    written atomically to ``csv_path`` in the format of SpeechBrain's
    ``speechbrain.augment.preparation`` (ID, duration, wav, wav_format,
    wav_opts).
    """
    path = Path(source)
    if path.is_file():
        return str(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"augmentation source {source} is neither a CSV file nor a folder"
        )
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"augmentation folder {source} holds no wav/flac files")
    # SpeechBrain's augmentation CSV format (legacy ExtendedCSVDataset).
    lines = ["ID,duration,wav,wav_format,wav_opts"]
    for index, file in enumerate(files):
        info = sf.info(str(file))
        ext = file.suffix[1:].lower()
        lines.append(f"{index}_{file.stem},{info.duration:.3f},{file},{ext},")
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(csv_path, "\n".join(lines) + "\n")
    return csv_path


class EnvCorruption(nn.Module):
    """MUSAN noise and RIR reverberation as in the official recipe.

    Each utterance is corrupted with probability ``prob`` by one of
    {noise, reverb, reverb then noise} (uniformly, among those whose source
    is given), then peak-normalised. Sources are local folders or CSV files
    (no downloads). With no source the module is a no-op and says so once.

    Arguments
    ---------
    noise_source : str, optional
        MUSAN noise folder (the official recipe uses ``musan/noise/free-sound``)
        or a SpeechBrain CSV of noise files.
    rir_source : str, optional
        RIR folder (official: ``RIRS_NOISES/real_rirs_isotropic_noises``) or CSV.
    csv_folder : str
        Where CSVs of folders are written.
    prob : float
        Probability that an utterance is corrupted.
    snr_low, snr_high : float
        Uniform SNR range in dB.
    sample_rate : int
        Sample rate of speech, noise and RIRs.

    Example
    -------
    >>> corrupt = EnvCorruption()
    >>> x = torch.rand(2, 800)
    >>> bool(torch.equal(corrupt(x, torch.ones(2)), x))
    True
    """

    def __init__(
        self,
        noise_source: Optional[str] = None,
        rir_source: Optional[str] = None,
        csv_folder: str = ".",
        prob: float = 0.8,
        snr_low: float = 0.0,
        snr_high: float = 15.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        from speechbrain.augment.time_domain import AddNoise, AddReverb

        self.prob = prob
        self.add_noise = self.add_reverb = None
        if noise_source:
            self.add_noise = AddNoise(
                csv_file=write_audio_csv(noise_source, f"{csv_folder}/noise.csv"),
                snr_low=snr_low,
                snr_high=snr_high,
                pad_noise=True,
                noise_sample_rate=sample_rate,
                clean_sample_rate=sample_rate,
            )
        if rir_source:
            self.add_reverb = AddReverb(
                csv_file=write_audio_csv(rir_source, f"{csv_folder}/rir.csv"),
                reverb_sample_rate=sample_rate,
                clean_sample_rate=sample_rate,
            )
        # (reverb?, noise?) of each corruption type the sources allow.
        self.kinds = [
            kind
            for kind in ((False, True), (True, False), (True, True))
            if (not kind[0] or self.add_reverb) and (not kind[1] or self.add_noise)
        ]
        if not self.kinds:
            logger.info(
                "Noise/reverb augmentation is OFF: no MUSAN noise or RIR source "
                "given (set noise_folder / rir_folder to enable it)"
            )

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Corrupts a padded batch (batch, samples) with relative lengths."""
        if not self.kinds or self.prob <= 0:
            return wavs
        batch = wavs.shape[0]
        chosen = torch.randint(len(self.kinds), (batch,)).tolist()
        apply = (torch.rand(batch) < self.prob).tolist()
        reverb = [i for i in range(batch) if apply[i] and self.kinds[chosen[i]][0]]
        noise = [i for i in range(batch) if apply[i] and self.kinds[chosen[i]][1]]
        out = wavs.clone()
        if reverb:
            out[reverb] = self.add_reverb(out[reverb])
        if noise:
            out[noise] = self.add_noise(out[noise], lengths[noise])
        touched = [i for i in range(batch) if apply[i]]
        if touched:
            peak = out[touched].abs().amax(dim=1, keepdim=True).clamp(min=1e-6)
            out[touched] = out[touched] / peak
        return out


# --------------------------------------------------------------------------
# Brain


class AccuracyCounter(Recoverable):
    """Running classification accuracy of a stage, kept across a resume.

    Example
    -------
    >>> acc = AccuracyCounter()
    >>> acc.update(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 0]))
    >>> acc.value
    0.5
    """

    state_keys = ("correct", "total")

    def __init__(self) -> None:
        self.correct = self.total = 0

    def reset(self) -> None:
        """Starts a new stage."""
        self.correct = self.total = 0

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        """Counts the top-1 hits of (batch, [1,] classes) scores."""
        labels = labels.reshape(-1)
        hits = scores.reshape(labels.shape[0], -1).argmax(-1) == labels
        self.correct += int(hits.sum())
        self.total += int(labels.shape[0])

    @property
    def value(self) -> float:
        """Accuracy so far (0 before any update)."""
        return self.correct / max(1, self.total)


# oneDNN's NHWC 1x1 strided convolution computes its weight gradient past its
# workspace when the input has fewer channels than its 16-channel block
# (uxlfoundation/oneDNN#6035; PyTorch 2.14.1 crashes with "double free or
# corruption" or SIGSEGV, 15 channels and below here).
_ONEDNN_NHWC_MIN_CHANNELS = 16


def channels_last_problem(model: torch.nn.Module, device: str) -> Optional[str]:
    """Why ``model`` must not train channels-last on ``device``; None if it may.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> channels_last_problem(ERes2Net(m_channels=32), "cpu") is None
    True
    >>> channels_last_problem(ERes2Net(m_channels=4), "cpu").split(" crashes")[0]
    'stages.1.0.conv_in: 1x1 stride-2 conv on 8 < 16 channels'
    """
    if not device.startswith("cpu"):
        return None
    for name, module in model.named_modules():
        if (
            isinstance(module, torch.nn.Conv2d)
            and module.kernel_size == (1, 1)
            and module.stride != (1, 1)
            and module.in_channels < _ONEDNN_NHWC_MIN_CHANNELS
        ):
            return (
                f"{name}: 1x1 stride-{module.stride[0]} conv on "
                f"{module.in_channels} < {_ONEDNN_NHWC_MIN_CHANNELS} channels "
                f"crashes oneDNN's NHWC backward (uxlfoundation/oneDNN#6035)"
            )
    return None


class SpeakerBrain(sb.core.Brain):
    """Speaker-embedding training: features, embedding model, AAM classifier.

    Expected ``modules``: ``compute_features``, ``mean_var_norm``,
    ``embedding_model``, ``classifier``. Expected ``hparams``:
    ``compute_cost`` (:class:`ArcMarginLoss`), ``lr_scheduler``
    (:class:`WarmupCosineLR`), ``margin_scheduler`` (:class:`MarginSchedule`),
    optional ``env_corrupt`` (:class:`EnvCorruption`), ``train_logger``,
    ``epoch_clock`` (set by :func:`build_datasets`), ``keep_checkpoints``,
    ``channels_last`` (store the embedding model's 4-D weights NHWC, so
    its 2-D convolutions run channels-last; values are unchanged).
    """

    steps_per_epoch = 1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.hparams, "channels_last", False):
            model = self.modules.embedding_model
            problem = channels_last_problem(model, str(self.device))
            if problem is None:
                # oneDNN (CPU) and cuDNN (tensor cores) compute 2-D convs in
                # NHWC; with NHWC weights the activations follow and no layout
                # conversion runs per layer. 1-D models (ECAPA) are unaffected.
                model.to(memory_format=torch.channels_last)
            else:
                logger.warning("channels_last ignored: %s", problem)
        # Mid-epoch checkpoints keep the running accuracy of the epoch.
        self.accuracy = AccuracyCounter()
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("train_accuracy", self.accuracy)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kwargs):
        """Also records the number of steps per epoch for the schedules."""
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **kwargs)
        if stage == sb.Stage.TRAIN:
            self.steps_per_epoch = max(1, len(loader))
        return loader

    def features(self, batch, stage) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features and relative lengths of a batch."""
        if hasattr(batch, "feats"):
            feats, lens = batch.feats
        else:
            wavs, lens = batch.sig
            corrupt = getattr(self.hparams, "env_corrupt", None)
            if stage == sb.Stage.TRAIN and corrupt is not None:
                wavs = corrupt(wavs, lens)
            feats = self.modules.compute_features(wavs)
        return self.modules.mean_var_norm(feats, lens), lens

    def compute_forward(self, batch, stage):
        """Classifier cosines of the batch, (batch, 1, classes)."""
        batch = batch.to(self.device)
        feats, lens = self.features(batch, stage)
        embeddings = self.modules.embedding_model(feats, lens)
        return self.modules.classifier(embeddings)

    def compute_objectives(self, predictions, batch, stage):
        """AAM loss; also tracks classification accuracy."""
        labels, _ = batch.spk_label
        loss = self.hparams.compute_cost(predictions, labels)
        self.accuracy.update(predictions.detach(), labels)
        return loss

    def on_fit_batch_start(self, batch, should_step):
        """Per-iteration LR and margin, from the fractional epoch."""
        progress = (self.current_epoch - 1) + (self.step - 1) / self.steps_per_epoch
        self.hparams.lr_scheduler(self.optimizer, progress)
        self.hparams.margin_scheduler(self.hparams.compute_cost, progress)

    def on_stage_start(self, stage, epoch=None):
        """Resets the accuracy counters; tells the data pipeline the epoch."""
        # self.step > 0: resuming inside this epoch, the counter was restored.
        if stage != sb.Stage.TRAIN or self.step == 0:
            self.accuracy.reset()
        if stage == sb.Stage.TRAIN:
            self.current_epoch = epoch
            self.hparams.epoch_clock.epoch = epoch

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the epoch; saves a checkpoint after the last stage of it."""
        stats = {"loss": stage_loss, "accuracy": self.accuracy.value}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            if getattr(self, "has_valid", False):
                return
            valid_stats = None
        else:
            valid_stats = stats
        if stage == sb.Stage.TEST:
            return
        meta = {
            "epoch": epoch,
            "lr": self.hparams.lr_scheduler.current,
            "margin": self.hparams.margin_scheduler.current,
        }
        self.hparams.train_logger.log_stats(
            stats_meta=meta, train_stats=self.train_stats, valid_stats=valid_stats
        )
        self.checkpointer.save_and_keep_only(
            meta={"epoch": epoch, "train_loss": float(self.train_stats["loss"])},
            num_to_keep=getattr(self.hparams, "keep_checkpoints", 1),
        )

    def fit(self, epoch_counter, train_set, valid_set=None, **kwargs):
        """SpeechBrain's fit; remembers whether there is a validation stage."""
        self.has_valid = valid_set is not None
        return super().fit(epoch_counter, train_set, valid_set, **kwargs)

    def _wrap_distributed(self):
        """DDP wrapping that also runs on CPU.

        SpeechBrain converts BatchNorm to SyncBatchNorm, which PyTorch runs
        only on accelerators; CPU processes (gloo) keep plain BatchNorm,
        with buffers broadcast from rank 0 by DDP.
        """
        if not (self.distributed_launch and str(self.device).startswith("cpu")):
            return super()._wrap_distributed()
        from torch.nn.parallel import DistributedDataParallel

        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, find_unused_parameters=self.find_unused_parameters
                )
        return None

    @torch.no_grad()
    def encode_batch(
        self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Embeddings (batch, emb_dim) of full-length waveforms (batch, samples)."""
        self.modules.eval()
        wavs = wavs.to(self.device).float()
        if lengths is None:
            lengths = torch.ones(wavs.shape[0], device=self.device)
        lengths = lengths.to(self.device)
        feats = self.modules.compute_features(wavs)
        feats = self.modules.mean_var_norm(feats, lengths)
        return self.modules.embedding_model(feats, lengths).squeeze(1)


# --------------------------------------------------------------------------
# Recipe driver


def load_hparams(hparams_file: str, overrides: Any = None) -> dict:
    """Loads a training YAML with overrides (YAML string or dict)."""
    from hyperpyyaml import load_hyperpyyaml

    path = Path(hparams_file)
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file {hparams_file} does not exist")
    with open(path, encoding="utf-8") as handle:
        return load_hyperpyyaml(handle, overrides or {})


def prepare_kwargs(hparams: dict) -> dict:
    """Arguments of :func:`speechbrain_eres2net.dataprep.prepare_voxceleb`."""
    return {
        "data_folders": hparams["data_folder"],
        "save_folder": hparams["csv_folder"],
        "verification_pairs_file": hparams.get("verification_file"),
        "split_ratio": tuple(hparams.get("split_ratio", (90, 10))),
        "seed": hparams.get("seed", 1234),
    }


def count_speakers(csv_path: str) -> int:
    """Distinct ``spk_id`` values of a SpeechBrain CSV."""
    return len({row["spk_id"] for row in read_csv_rows(csv_path)})


def fit_classifier_size(hparams_file: str, overrides: Any, hparams: dict) -> dict:
    """Reloads the YAML so the classifier has one output per class.

    The official trainer sizes the classifier from the data (speakers x
    speeds). With ``auto_out_neurons: False`` (e.g. fine-tuning a trained
    classifier) the YAML value is kept, after checking it is large enough.
    """
    needed = num_classes(hparams, count_speakers(hparams["train_annotation"]))
    if not hparams.get("auto_out_neurons", True):
        if hparams["out_n_neurons"] < needed:
            raise ValueError(
                f"out_n_neurons={hparams['out_n_neurons']} but the training data "
                f"need {needed} classes (speakers x speeds)"
            )
        return hparams
    if hparams["out_n_neurons"] == needed:
        return hparams
    if isinstance(overrides, str):
        import yaml

        overrides = yaml.safe_load(overrides) if overrides.strip() else {}
    logger.info("Classifier sized from the data: out_n_neurons=%d", needed)
    return load_hparams(hparams_file, {**(overrides or {}), "out_n_neurons": needed})


def make_front_end(
    kind: str = "speechbrain", n_mels: int = 80, sample_rate: int = 16000
) -> nn.Module:
    """The fbank front end: SpeechBrain's ``Fbank`` or the official Kaldi one.

    Models trained by this recipe use ``"speechbrain"``; weights imported
    from 3D-Speaker need ``"kaldi"`` (:class:`~speechbrain_eres2net.KaldiFbank`
    with per-utterance mean normalisation).

    Example
    -------
    >>> type(make_front_end("kaldi")).__name__
    'KaldiFbank'
    """
    if kind == "speechbrain":
        from speechbrain.lobes.features import Fbank

        return Fbank(n_mels=n_mels, sample_rate=sample_rate)
    if kind == "kaldi":
        from .features import KaldiFbank

        return KaldiFbank(n_mels=n_mels, sample_rate=sample_rate, mean_norm=True)
    raise ValueError(f"front_end must be 'speechbrain' or 'kaldi', not {kind!r}")


def load_3dspeaker_into(model: nn.Module, path: str) -> None:
    """Copies an official 3D-Speaker checkpoint into ``model`` (same shape)."""
    from .checkpoints import load_3dspeaker

    official = load_3dspeaker(path)
    try:
        model.load_state_dict(official.state_dict())
    except RuntimeError as err:
        raise ValueError(
            f"{path}: the 3D-Speaker weights do not fit embedding_model; set "
            f"m_channels/emb_dim/num_blocks to match them ({err})"
        ) from err


def load_pretrained(hparams: dict) -> None:
    """Initialises the model from ``pretrained_3dspeaker`` or ``pretrained_path``.

    ``pretrained_3dspeaker`` (an official checkpoint file) requires the
    Kaldi front end; ``pretrained_path`` is loaded by the YAML's
    ``pretrainer``. Checkpoints of this run, when present, are recovered
    later by ``fit`` and take precedence.
    """
    official = hparams.get("pretrained_3dspeaker")
    if official:
        if hparams.get("front_end") != "kaldi":
            raise ValueError(
                "pretrained_3dspeaker needs the official front end: "
                "set front_end: kaldi"
            )
        load_3dspeaker_into(hparams["embedding_model"], official)
        logger.info("Embedding model initialised from 3D-Speaker %s", official)
        return
    pretrainer = hparams.get("pretrainer")
    if pretrainer is None or not hparams.get("pretrained_path"):
        return
    sb.utils.distributed.run_on_main(pretrainer.collect_files)
    pretrainer.load_collected()
    logger.info("Initialised from %s", hparams["pretrained_path"])


def train(hparams: dict, run_opts: Optional[dict] = None):
    """Builds the datasets and the :class:`SpeakerBrain`, and trains.

    ``run_opts`` are SpeechBrain's (``--device``, ``--precision``,
    ``--noprogressbar``, ...). Returns the brain (its modules hold the
    trained model).
    """
    run_opts = dict(run_opts or {})
    progress = not run_opts.get("noprogressbar", False)
    train_data, valid_data, _ = build_datasets(hparams, progress=progress)
    load_pretrained(hparams)
    brain = SpeakerBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    options = dataloader_options(hparams)
    brain.fit(
        hparams["epoch_counter"],
        train_data,
        valid_data,
        train_loader_kwargs=options,
        valid_loader_kwargs={**options, "shuffle": False, "drop_last": False},
    )
    return brain
