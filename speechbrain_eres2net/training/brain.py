"""``SpeakerBrain``: speaker-embedding training with SpeechBrain's ``Brain``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from typing import Optional

import speechbrain as sb
import torch

from ..nnet.recoverable import Recoverable

logger = logging.getLogger(__name__)


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
    optional ``wav_augment`` (a SpeechBrain ``Augmenter``, or any module
    ``(wavs, lengths) -> wavs`` or ``-> (wavs, lengths)``, applied to training
    waveforms; the recipe YAMLs list :class:`EnvCorruption` in an
    ``Augmenter``, so another augmentation is one more list entry),
    ``train_logger``,
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
            augment = getattr(self.hparams, "wav_augment", None)
            if stage == sb.Stage.TRAIN and augment is not None:
                out = augment(wavs, lens)
                wavs, lens = out if isinstance(out, tuple) else (out, lens)
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
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and hasattr(augment, "replicate_labels"):
            # An Augmenter may add copies of the batch (concat_original,
            # parallel pipelines); their labels follow.
            labels = augment.replicate_labels(labels)
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
        # A private Brain hook (hence speechbrain<1.2 in setup.py): SpeechBrain
        # 1.1 converts to SyncBatchNorm unconditionally, with no option to
        # leave BatchNorm as it is.
        if not (self.distributed_launch and str(self.device).startswith("cpu")):
            return super()._wrap_distributed()
        from torch.nn.parallel import DistributedDataParallel

        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, find_unused_parameters=self.find_unused_parameters
                )
        return None
