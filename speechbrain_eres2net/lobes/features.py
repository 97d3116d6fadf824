"""Kaldi filterbank front ends: the official 3D-Speaker one and the deployable one.

Weights trained by 3D-Speaker expect 80-bin Kaldi fbank features (25 ms
window, 10 ms shift, povey window, no dither) of audio in [-1, 1], with the
per-utterance mean of each bin removed, computed by
``torchaudio.compliance.kaldi.fbank`` with its defaults (``snip_edges``
framing, mel banks up to Nyquist). SpeechBrain's own ``Fbank`` is a
different computation, so imported official weights need this module.

Our recipes train on the same filterbank with the settings sherpa-onnx
(kaldi-native-fbank) computes at deployment, which no metadata can change:
frames centred on each 10 ms hop (``snip_edges=False``) and mel banks up
to 400 Hz below Nyquist (``high_freq=-400``). A model trained so runs in
sherpa-onnx on exactly the features it was trained on; see
:mod:`speechbrain_eres2net.export.sherpa_onnx`.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torchaudio.compliance import kaldi

from .masking import relative_to_frames


class KaldiFbank(nn.Module):
    """Batched, length-aware Kaldi fbank with optional mean normalisation.

    Each utterance is computed on its own valid samples, so it gets
    exactly the features it gets alone;
    frames past its end are zero. Frames that a utterance of the batch does
    not fill are zero-padded.

    Arguments
    ---------
    n_mels : int
        Mel bins.
    sample_rate : int
        Expected sample rate of the audio.
    frame_length : float
        Window length in milliseconds.
    frame_shift : float
        Hop in milliseconds.
    dither : float
        Kaldi dither; 0 (the official setting) makes features deterministic.
    mean_norm : bool
        Subtract each utterance's per-bin mean over its valid frames.
    low_freq : float
        Lowest mel-bank edge in Hz.
    high_freq : float
        Highest mel-bank edge in Hz; 0 or less is relative to Nyquist
        (0: Nyquist, the official setting; -400: sherpa-onnx's).
    snip_edges : bool
        True (official): only frames that fit in the signal; False: one
        frame per hop, centred, with the signal reflected at its edges
        (Kaldi's other framing, the one sherpa-onnx uses).

    Example
    -------
    >>> fbank = KaldiFbank()
    >>> wavs = torch.rand(2, 16000) * 2 - 1
    >>> feats = fbank(wavs, torch.tensor([1.0, 0.5]))
    >>> feats.shape
    torch.Size([2, 98, 80])
    >>> bool((feats[1, 48:] == 0).all())
    True
    """

    def __init__(
        self,
        n_mels: int = 80,
        sample_rate: int = 16000,
        frame_length: float = 25.0,
        frame_shift: float = 10.0,
        dither: float = 0.0,
        mean_norm: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        snip_edges: bool = True,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.dither = dither
        self.mean_norm = mean_norm
        self.low_freq = low_freq
        self.high_freq = high_freq
        self.snip_edges = snip_edges
        self.window_samples = int(sample_rate * frame_length / 1000)
        self.hop_samples = int(sample_rate * frame_shift / 1000)

    def num_frames(self, num_samples: int) -> int:
        """Frames that this framing gives for a waveform length.

        Example
        -------
        >>> KaldiFbank().num_frames(160000)
        998
        >>> KaldiFbank(snip_edges=False).num_frames(160000)
        1000
        """
        if num_samples < self.window_samples:
            return 0
        if not self.snip_edges:
            return (num_samples + self.hop_samples // 2) // self.hop_samples
        return 1 + (num_samples - self.window_samples) // self.hop_samples

    def forward(
        self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Computes features of a padded batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, samples) audio in [-1, 1], or (samples,) for one.
        lengths : torch.Tensor, optional
            (batch,) lengths relative to the longest waveform.

        Returns
        -------
        torch.Tensor
            (batch, frames, n_mels) features.
        """
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wavs.dim() != 2:
            raise ValueError(
                f"KaldiFbank expects waveforms of shape (batch, samples), got "
                f"{tuple(wavs.shape)}; average multi-channel audio to mono first"
            )
        if lengths is None:
            samples = [wavs.shape[1]] * wavs.shape[0]
        else:
            samples = relative_to_frames(lengths, wavs.shape[1]).tolist()
        too_short = [i for i, n in enumerate(samples) if n < self.window_samples]
        if too_short:
            raise ValueError(
                f"KaldiFbank: utterance(s) {too_short} have fewer samples than "
                f"one {self.frame_length} ms window ({self.window_samples} samples)"
            )
        feats = []
        for wav, n in zip(wavs, samples):
            feat = kaldi.fbank(
                wav[:n].unsqueeze(0).float(),
                num_mel_bins=self.n_mels,
                sample_frequency=self.sample_rate,
                frame_length=self.frame_length,
                frame_shift=self.frame_shift,
                dither=self.dither if self.training else 0.0,
                low_freq=self.low_freq,
                high_freq=self.high_freq,
                snip_edges=self.snip_edges,
            )
            if self.mean_norm:
                feat = feat - feat.mean(dim=0, keepdim=True)
            feats.append(feat)
        return nn.utils.rnn.pad_sequence(feats, batch_first=True).to(wavs.dtype)


def make_front_end(
    kind: str = "sherpa", n_mels: int = 80, sample_rate: int = 16000
) -> nn.Module:
    """The fbank front end of a model folder to fine-tune, by name.

    ``"sherpa"``: the Kaldi fbank our recipes train with since 0.3 (the
    settings sherpa-onnx computes; the per-utterance mean is left to the
    recipe's ``mean_var_norm``); ``"kaldi"``: the official 3D-Speaker one,
    which imported weights need; ``"speechbrain"``: SpeechBrain's ``Fbank``,
    which our recipes trained with before 0.3.

    Example
    -------
    >>> fbank = make_front_end("sherpa")
    >>> type(fbank).__name__, fbank.high_freq, fbank.snip_edges
    ('KaldiFbank', -400.0, False)
    >>> make_front_end("kaldi").snip_edges
    True
    """
    if kind == "speechbrain":
        from speechbrain.lobes.features import Fbank

        return Fbank(n_mels=n_mels, sample_rate=sample_rate)
    if kind == "kaldi":
        return KaldiFbank(n_mels=n_mels, sample_rate=sample_rate, mean_norm=True)
    if kind == "sherpa":
        return KaldiFbank(
            n_mels=n_mels,
            sample_rate=sample_rate,
            mean_norm=False,
            high_freq=-400.0,
            snip_edges=False,
        )
    raise ValueError(
        f"front_end must be 'sherpa', 'kaldi' or 'speechbrain', not {kind!r}"
    )
