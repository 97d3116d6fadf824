"""ERes2Net speaker-embedding lobe (arXiv 2305.12838) for SpeechBrain.

The network treats an 80-bin filterbank as a one-channel image (frequency as
height, time as width): a 3x3 stem, four Res2Net stages, a bottom-up global
feature fusion side path, temporal statistics pooling and one linear layer.
It computes exactly what the official 3D-Speaker implementation computes
(checked against it in the test suite) and adds what that code lacks:
padding-aware ``lengths``, clear input errors, and the paper's ablations as
constructor arguments.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import nn

from .eres2net_3dspeaker import (
    StateDict,
    convert_state_dict,
    infer_config,
    read_state_dict,
)
from .fusion import FUSION_KINDS, make_fusion
from .masking import halve_frames, relative_to_frames, time_mask
from .pooling import TemporalStatsPool

# Where the global-fusion side path starts: "bottom_up" fuses stages
# 1 -> 12 -> 123 -> 1234 (ERes2Net); "last" fuses only stage 3 into stage 4
# (ERes2NetV2); "none" pools stage 4 alone.
GLOBAL_FUSION_START = {"bottom_up": 0, "last": 2, "none": None}


NUM_STAGES = 4


def valid_frames(
    x: torch.Tensor, lengths: Optional[torch.Tensor], feat_dim: int, min_frames: int
) -> Optional[torch.Tensor]:
    """Checks an ERes2Net input; returns valid frame counts, None if unpadded.

    Shared by the model and its fast paths (which keep no model to ask).

    Example
    -------
    >>> valid_frames(torch.zeros(2, 20, 80), torch.tensor([1.0, 0.5]), 80, 9)
    tensor([20, 10])
    >>> valid_frames(torch.zeros(2, 20, 80), None, 80, 9) is None
    True
    """
    if x.dim() != 3 or x.shape[-1] != feat_dim:
        raise ValueError(
            f"ERes2Net expects features of shape (batch, time, "
            f"feat_dim={feat_dim}), got {tuple(x.shape)}"
        )
    tracing = torch.jit.is_tracing() or torch.jit.is_scripting()
    if not tracing and x.shape[1] < min_frames:
        raise ValueError(
            f"ERes2Net needs at least {min_frames} frames per "
            f"utterance, got an input of {x.shape[1]} frames"
        )
    if lengths is None:
        return None
    if lengths.dim() != 1 or lengths.shape[0] != x.shape[0]:
        raise ValueError(
            f"ERes2Net: lengths must have shape (batch={x.shape[0]},), "
            f"got {tuple(lengths.shape)}"
        )
    frames = relative_to_frames(lengths.to(x.device), x.shape[1])
    if tracing:
        return frames
    shortest = int(frames.min())
    if shortest < min_frames:
        raise ValueError(
            f"ERes2Net needs at least {min_frames} valid frames per "
            f"utterance; utterance {int(frames.argmin())} has {shortest} "
            f"(relative length {float(lengths.min()):.4f} of {x.shape[1]})"
        )
    if shortest == x.shape[1]:
        return None  # nothing padded: skip masking entirely
    return frames


def clipped_relu() -> nn.Module:
    """The block activation of ERes2Net: ReLU clipped at 20 (in place)."""
    return nn.Hardtanh(0.0, 20.0, inplace=True)


class ERes2NetBlock(nn.Module):
    """Res2Net bottleneck block whose channel groups are combined by a fusion.

    A 1x1 convolution (carrying the block's stride) widens the input to
    ``scale`` groups of ``width`` channels. Group 0 goes through a 3x3 conv;
    each later group is first fused with the previous group's output, then
    convolved. Every group is convolved (unlike textbook Res2Net, which
    passes one group through untouched). A 1x1 convolution projects the
    concatenated groups to ``planes * expansion`` channels, added to the
    shortcut. ``fusion="aff"`` gives ERes2Net's local feature fusion,
    ``"sum"`` the plain Res2Net block.

    Arguments
    ---------
    in_channels : int
        Input channels.
    planes : int
        Stage width; the output has ``planes * expansion`` channels.
    stride : int
        Stride of the block (time and frequency).
    base_width : int
        Group width is ``floor(planes * base_width / 64)``.
    scale : int
        Number of channel groups.
    expansion : int
        Output channel multiplier.
    fusion : str
        How a group is combined with the previous group's output:
        ``"aff"``, ``"sum"`` or ``"concat"``.

    Example
    -------
    >>> block = ERes2NetBlock(32, 32, stride=2, fusion="aff")
    >>> block(torch.randn(2, 32, 20, 50)).shape
    torch.Size([2, 64, 10, 25])
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        base_width: int = 32,
        scale: int = 2,
        expansion: int = 2,
        fusion: str = "sum",
    ) -> None:
        super().__init__()
        width = planes * base_width // 64
        if width < 1 or scale < 1:
            raise ValueError(
                f"ERes2NetBlock: planes={planes}, base_width={base_width} and "
                f"scale={scale} give an empty channel group"
            )
        out_channels = planes * expansion
        self.width = width
        self.conv_in = nn.Conv2d(
            in_channels, width * scale, kernel_size=1, stride=stride, bias=False
        )
        self.bn_in = nn.BatchNorm2d(width * scale)
        self.split_convs = nn.ModuleList(
            nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False)
            for _ in range(scale)
        )
        self.split_bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale))
        self.fusions = nn.ModuleList(
            make_fusion(fusion, width) for _ in range(scale - 1)
        )
        self.conv_out = nn.Conv2d(
            width * scale, out_channels, kernel_size=1, bias=False
        )
        self.bn_out = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.act = clipped_relu()

    def forward(
        self, x: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Runs the block.

        Arguments
        ---------
        x : torch.Tensor
            (batch, in_channels, freq, time).
        mask : torch.Tensor, optional
            (batch, 1, 1, time_out) time mask at the block's output
            resolution; padded frames are zeroed before each 3x3 conv so
            that they cannot leak into valid frames.

        Returns
        -------
        torch.Tensor
            (batch, planes * expansion, freq_out, time_out).
        """
        groups = torch.split(self.act(self.bn_in(self.conv_in(x))), self.width, dim=1)
        outputs = []
        branch = groups[0]
        for i, (conv, bn) in enumerate(zip(self.split_convs, self.split_bns)):
            if i > 0:
                branch = self.fusions[i - 1](branch, groups[i])
            if mask is not None:
                branch = branch * mask
            branch = self.act(bn(conv(branch)))
            outputs.append(branch)
        out = self.bn_out(self.conv_out(torch.cat(outputs, dim=1)))
        # In place, as the official block: one feature map less per block.
        out += self.shortcut(x)
        return self.act(out)


class ERes2Net(nn.Module):
    """ERes2Net speaker-embedding model as a SpeechBrain lobe.

    Input is a (batch, time, feat_dim) filterbank, output a
    (batch, 1, embedding_size) embedding, like SpeechBrain's ECAPA_TDNN.
    The defaults are the paper's ERes2Net-base (6.61 M parameters);
    ``m_channels=64`` gives ERes2Net-large (22.46 M). With ``lengths``,
    padded frames neither leak through convolutions nor enter the pooled
    statistics, so an utterance gets the same embedding in any batch.

    Arguments
    ---------
    feat_dim : int
        Filterbank bins, a multiple of 8 (three stride-2 stages).
    embedding_size : int
        Size of the output embedding.
    m_channels : int
        Stem channels m; stage k has ``m * 2**(k-1)`` planes.
    num_blocks : sequence of int
        Blocks in each of the four stages.
    base_width : int
        Res2Net base width (group width = planes * base_width / 64).
    scale : int
        Res2Net scale (channel groups per block).
    expansion : int
        Block output channels = planes * expansion.
    lff_stages : sequence of int
        Stages (1-4) whose blocks fuse their groups with ``fusion`` (local
        feature fusion); the other stages sum them. Empty = plain Res2Net.
    fusion : str
        Fusion operator for local and global fusion: ``"aff"`` (paper),
        ``"sum"`` or ``"concat"``.
    global_fusion : str or bool
        ``"bottom_up"`` (True, the paper), ``"last"`` (stage 3 into 4 only,
        as ERes2NetV2) or ``"none"`` (False).

    Example
    -------
    >>> model = ERes2Net(feat_dim=80, m_channels=8, num_blocks=[1, 1, 1, 1])
    >>> feats = torch.randn(3, 120, 80)
    >>> model(feats, torch.tensor([1.0, 0.8, 0.5])).shape
    torch.Size([3, 1, 192])
    """

    # With lengths, batching never changes an embedding: SpeakerEmbedder
    # batches only lobes that say so.
    padding_exact = True

    def __init__(
        self,
        feat_dim: int = 80,
        embedding_size: int = 192,
        m_channels: int = 32,
        num_blocks: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 32,
        scale: int = 2,
        expansion: int = 2,
        lff_stages: Sequence[int] = (3, 4),
        fusion: str = "aff",
        global_fusion: Union[str, bool] = "bottom_up",
    ) -> None:
        super().__init__()
        if feat_dim <= 0 or feat_dim % 8 != 0:
            raise ValueError(
                f"ERes2Net: feat_dim must be a positive multiple of 8 (three "
                f"stride-2 stages halve it), got {feat_dim}"
            )
        if len(num_blocks) != NUM_STAGES or min(num_blocks) < 1:
            raise ValueError(
                f"ERes2Net: num_blocks must list {NUM_STAGES} positive block "
                f"counts, got {list(num_blocks)}"
            )
        if fusion not in FUSION_KINDS:
            raise ValueError(
                f"ERes2Net: fusion must be one of {FUSION_KINDS}, got {fusion!r}"
            )
        if not set(lff_stages) <= {1, 2, 3, 4}:
            raise ValueError(
                f"ERes2Net: lff_stages must be among 1-4, got {list(lff_stages)}"
            )
        if isinstance(global_fusion, bool):
            global_fusion = "bottom_up" if global_fusion else "none"
        if global_fusion not in GLOBAL_FUSION_START:
            raise ValueError(
                f"ERes2Net: global_fusion must be one of "
                f"{sorted(GLOBAL_FUSION_START)} or a bool, got {global_fusion!r}"
            )
        self.feat_dim = feat_dim
        self.embedding_size = embedding_size
        self.global_fusion = global_fusion
        self._fusion_start = GLOBAL_FUSION_START[global_fusion]

        self.stem = nn.Sequential(
            nn.Conv2d(1, m_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(m_channels),
            nn.ReLU(inplace=True),
        )
        stage_channels = [m_channels * 2**k * expansion for k in range(NUM_STAGES)]
        self.stages = nn.ModuleList()
        in_channels = m_channels
        for k, n_blocks in enumerate(num_blocks):
            stage_fusion = fusion if (k + 1) in lff_stages else "sum"
            blocks = nn.ModuleList()
            for b in range(n_blocks):
                blocks.append(
                    ERes2NetBlock(
                        in_channels,
                        m_channels * 2**k,
                        stride=2 if (k > 0 and b == 0) else 1,
                        base_width=base_width,
                        scale=scale,
                        expansion=expansion,
                        fusion=stage_fusion,
                    )
                )
                in_channels = stage_channels[k]
            self.stages.append(blocks)

        # Side path: downsample the running fused map (stride-2 3x3 conv, no
        # BN or activation) and fuse it with the next stage's output.
        fused_into = (
            range(self._fusion_start + 1, NUM_STAGES)
            if self._fusion_start is not None
            else range(0)
        )
        self.downsamples = nn.ModuleList(
            nn.Conv2d(
                stage_channels[k - 1],
                stage_channels[k],
                kernel_size=3,
                stride=2,
                padding=1,
                bias=False,
            )
            for k in fused_into
        )
        self.global_fusions = nn.ModuleList(
            make_fusion(fusion, stage_channels[k]) for k in fused_into
        )

        self.pooling = TemporalStatsPool()
        pooled_freq = math.ceil(feat_dim / 2 ** (NUM_STAGES - 1))
        self.embedding = nn.Linear(2 * stage_channels[-1] * pooled_freq, embedding_size)

    @property
    def min_frames(self) -> int:
        """Fewest input frames that give a finite embedding.

        Pooling needs two frames after the three stride-2 stages, each of
        which maps n frames to ceil(n / 2): 9 frames (90 ms at a 10 ms hop).
        """
        return 2 ** (NUM_STAGES - 1) + 1

    def forward(
        self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Computes speaker embeddings.

        Arguments
        ---------
        x : torch.Tensor
            (batch, time, feat_dim) filterbank features.
        lengths : torch.Tensor, optional
            (batch,) lengths relative to the longest utterance, as in
            SpeechBrain. None means no padding.

        Returns
        -------
        torch.Tensor
            (batch, 1, embedding_size) embeddings.
        """
        frames = valid_frames(x, lengths, self.feat_dim, self.min_frames)
        # One time mask per stage resolution; None everywhere when unpadded.
        masks: list[Optional[torch.Tensor]] = [None] * NUM_STAGES
        if frames is not None:
            steps = x.shape[1]
            for k in range(NUM_STAGES):
                if k > 0:
                    frames, steps = halve_frames(frames), (steps + 1) // 2
                masks[k] = time_mask(frames, steps, x.dtype)

        out = x.transpose(1, 2).unsqueeze(1)  # (batch, 1, freq, time)
        if masks[0] is not None:
            out = out * masks[0]
        out = self.stem(out)
        fused = None
        start = self._fusion_start
        for k, stage in enumerate(self.stages):
            for block in stage:
                out = block(out, masks[k])
            if start is None or k < start:
                continue
            if k == start:
                fused = out
                continue
            if masks[k - 1] is not None:
                fused = fused * masks[k - 1]
            j = k - start - 1
            fused = self.global_fusions[j](out, self.downsamples[j](fused))
        final = out if fused is None else fused

        rel = None if frames is None else frames.to(final.dtype) / final.shape[-1]
        stats = self.pooling(final, rel)
        return self.embedding(stats).unsqueeze(1)

    @classmethod
    def from_3dspeaker(
        cls, checkpoint: Union[str, os.PathLike, StateDict], **overrides
    ) -> ERes2Net:
        """Builds a model holding an official 3D-Speaker ERes2Net checkpoint.

        The variant (base, large, ERes2NetV2, huge, any width, embedding size
        or ``feat_dim``) is read off the tensor shapes; every tensor must fit.

        Arguments
        ---------
        checkpoint : str, path or dict
            An official ERes2Net / ERes2NetV2 / ERes2Net_huge state_dict, or
            the path of a file holding one.
        **overrides
            Constructor arguments to force instead of the inferred ones.

        Returns
        -------
        ERes2Net
            The model in eval mode.

        Example
        -------
        >>> from speechbrain_eres2net.lobes.eres2net_3dspeaker import to_3dspeaker
        >>> small = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
        >>> again = ERes2Net.from_3dspeaker(to_3dspeaker(small))
        >>> x = torch.randn(1, 50, 80)
        >>> torch.equal(small(x), again(x))
        True
        """
        state_dict = read_state_dict(checkpoint)
        config = infer_config(state_dict)
        config.update(overrides)
        model = cls(**config)
        try:
            converted = convert_state_dict(
                state_dict, model.state_dict(), model.global_fusion
            )
        except ValueError as err:
            raise ValueError(
                f"checkpoint does not fit ERes2Net({config}): {err}"
            ) from err
        model.load_state_dict(converted, strict=True)
        return model.eval()
