"""The training data pipeline: random crops of CSV rows, optionally of cached fbank.

Randomness (crop position, speed) is drawn from a generator seeded by
(seed, epoch, item id), so a run restored from an intra-epoch checkpoint sees
the same crops as an uninterrupted one.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder
from torch import nn
from tqdm import tqdm

from ..augment.speed import active_speeds, change_speed, speed_label
from ..dataio.speaker_csv import read_speaker_csv
from ..dataio.speech_cache import Segments, row_speech, trim_segments
from ..dataio.speech_handling import SpeechHandling

logger = logging.getLogger(__name__)


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

    def __init__(
        self,
        compute_features: nn.Module,
        keep: Optional[Callable[[str, torch.Tensor], torch.Tensor]] = None,
    ) -> None:
        self.compute_features = compute_features
        self.keep = keep
        self.feats: dict[tuple[str, int], torch.Tensor] = {}

    @torch.no_grad()
    def fill(
        self,
        rows: Sequence[dict[str, Any]],
        speeds: Sequence[float],
        progress: bool = True,
    ) -> None:
        """Computes features of every row at every speed (of what ``keep``,
        ``(row id, wav) -> wav``, keeps of it)."""
        todo = [row for row in rows if (row["id"], 0) not in self.feats]
        for row in tqdm(todo, desc="fbank cache", disable=not progress):
            wav = read_segment(row["wav"], int(row["start"]), int(row["stop"]))
            if self.keep is not None:
                wav = self.keep(row["id"], wav)
            for index, speed in enumerate(speeds):
                signal = change_speed(wav, speed).unsqueeze(0)
                self.feats[(row["id"], index)] = self.compute_features(signal)[0]

    def get(self, item_id: str, speed_index: int) -> torch.Tensor:
        """Features of one segment at one speed, (frames, n_mels)."""
        return self.feats[(item_id, speed_index)]


def read_csv_rows(path: str, data_folder: Optional[str] = None) -> list[dict]:
    """Rows of a speaker CSV as dicts with an ``id`` key, in file order."""
    rows = read_speaker_csv(path, data_folder)
    return [{"id": key, **row} for key, row in rows.items()]


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

    Speech handling is that of inference (``vad`` and the ``vad_*`` entries
    of the training YAML, else of ``hparams/verification.yaml``;
    :class:`~speechbrain_eres2net.dataio.speech_handling.SpeechHandling`):
    with ``vad: trim`` crops are taken from each row's speech alone
    (segments found once, :func:`~speechbrain_eres2net.dataio.speech_cache.row_speech`),
    so a model is trained on what it will be given.
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

    speech_handling = SpeechHandling.resolve(hparams)
    speech: dict[str, Segments] = {}
    if speech_handling.vad == "trim":
        speech = training_speech(
            hparams["train_annotation"], train_rows, speech_handling, progress
        )
        if valid_rows:
            speech.update(
                training_speech(valid_path, valid_rows, speech_handling, progress)
            )

    def keep(item_id: str, wav: torch.Tensor) -> torch.Tensor:
        # trim_segments keeps a row whole when it has no speech segments.
        return trim_segments(wav, speech.get(item_id, ()), speech_handling, sample_rate)

    cache = None
    if hparams.get("feature_cache", False):
        cache = FeatureCache(hparams["compute_features"], keep)
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
                need = int(math.ceil(crop_samples * speeds[index])) + 1
                if item_id in speech:
                    # The crop is taken from what trim keeps of the row.
                    kept = keep(item_id, read_segment(wav, start, stop))
                    offset = random_window(kept.shape[0], need, gen)
                    segment = kept[offset : offset + need]
                else:
                    # Read just enough audio for one crop after the speed change.
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
        "%.1f s crops%s; %s",
        len(train_rows),
        num_speakers,
        num_speakers * len(speeds),
        speeds,
        hparams["sentence_len"],
        ", cached features" if cache else "",
        speech_handling.describe(),
    )
    return train_data, valid_data, encoder


def training_speech(
    csv_path: str,
    rows: list[dict],
    speech: SpeechHandling,
    progress: bool = True,
) -> dict[str, Segments]:
    """Speech segments of the rows of a CSV, found on the main process once.

    Rows in which no speech was heard are left out (trained on whole).
    """
    sb.utils.distributed.run_on_main(
        row_speech, args=[rows, speech, csv_path], kwargs={"progress": progress}
    )
    found = row_speech(rows, speech, csv_path, progress=False)
    silent = [key for key, segments in found.items() if not segments]
    if silent:
        logger.warning(
            "%d of %d rows of %s hold no speech the detector hears; trained on whole",
            len(silent),
            len(rows),
            csv_path,
        )
    return {key: segments for key, segments in found.items() if segments}


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


def count_speakers(csv_path: str) -> int:
    """Distinct ``spk_id`` values of a SpeechBrain CSV."""
    return len({row["spk_id"] for row in read_speaker_csv(csv_path).values()})
