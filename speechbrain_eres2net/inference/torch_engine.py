"""The PyTorch engine of the fast path: ERes2Net with folded BatchNorm, fp32 or bf16.

Built by :func:`~.fastpath.optimize_for_inference` (which chooses the
engine); the graph engines are :mod:`.onnx_engine` and :mod:`.openvino_engine`.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..lobes.eres2net import ERes2Net, ERes2NetBlock


def fold_batchnorms(model: nn.Module) -> nn.Module:
    """Folds, in place, every BatchNorm2d into the Conv2d that feeds it.

    Handles the conv/BN pairs of :class:`ERes2NetBlock` (input 1x1, the
    per-group 3x3 convolutions, output 1x1) and any ``nn.Sequential`` in
    which a Conv2d is directly followed by a BatchNorm2d (stem, projection
    shortcuts, AFF attention, concat fusion). The folded BN is replaced by
    ``nn.Identity``. Uses the BN running statistics, so the model must be
    meant for eval mode.

    Arguments
    ---------
    model : torch.nn.Module
        The model to modify (use a copy to keep the original).

    Returns
    -------
    torch.nn.Module
        ``model`` itself, in eval mode.

    Example
    -------
    >>> import copy
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> folded = fold_batchnorms(copy.deepcopy(model))
    >>> any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    False
    >>> x = torch.randn(2, 60, 80)
    >>> torch.allclose(model(x), folded(x), atol=1e-4)
    True
    """
    model.eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                conv, bn = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = nn.Identity()
        elif isinstance(module, ERes2NetBlock):
            module.conv_in = fuse_conv_bn_eval(module.conv_in, module.bn_in)
            module.bn_in = nn.Identity()
            module.conv_out = fuse_conv_bn_eval(module.conv_out, module.bn_out)
            module.bn_out = nn.Identity()
            for i, (conv, bn) in enumerate(zip(module.split_convs, module.split_bns)):
                module.split_convs[i] = fuse_conv_bn_eval(conv, bn)
                module.split_bns[i] = nn.Identity()
    return model


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 convolutions natively (fast).

    Example
    -------
    >>> native_bf16(torch.device("meta"))  # neither a CPU nor a CUDA device
    False
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


class FastERes2Net(nn.Module):
    """An ERes2Net with folded BatchNorm, optionally run in bf16.

    Built by :func:`optimize_for_inference`; same call contract as
    :class:`ERes2Net`. With ``bf16``, the backbone runs under bf16
    autocast and the feature map is cast back to fp32 before the
    statistics pooling and the embedding layer, which are the most
    precision-sensitive steps (a variance of activations).

    Arguments
    ---------
    folded : ERes2Net
        A model whose BatchNorms were folded by :func:`fold_batchnorms`.
    bf16 : bool
        Run convolutions in bf16.

    Example
    -------
    >>> import copy
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> fast = FastERes2Net(fold_batchnorms(copy.deepcopy(model)), bf16=False)
    >>> fast(torch.randn(2, 50, 80), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 1, 192])
    """

    padding_exact = True  # as the ERes2Net it wraps

    def __init__(self, folded: ERes2Net, bf16: bool = False) -> None:
        super().__init__()
        self.model = folded
        self.bf16 = bf16
        self.precision = "bf16" if bf16 else "fp32"
        self.engine = "torch"
        self.feat_dim = folded.feat_dim
        self.embedding_size = folded.embedding_size
        self.min_frames = folded.min_frames
        if bf16:
            self.model.pooling = Float32(self.model.pooling)
            self.model.embedding = Float32(self.model.embedding)

    def forward(
        self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Computes (batch, 1, embedding_size) fp32 embeddings.

        Arguments
        ---------
        x : torch.Tensor
            (batch, time, feat_dim) features.
        lengths : torch.Tensor, optional
            (batch,) relative lengths; None means no padding.

        Returns
        -------
        torch.Tensor
            (batch, 1, embedding_size) embeddings.
        """
        context = (
            torch.autocast(x.device.type, dtype=torch.bfloat16)
            if self.bf16
            else nullcontext()
        )
        with context:
            out = self.model(x, lengths)
        return out.float()


class Float32(nn.Module):
    """Runs a module in fp32 with autocast off, whatever the caller's mode.

    Arguments
    ---------
    module : torch.nn.Module
        The wrapped module; floating tensor arguments are cast to fp32.

    Example
    -------
    >>> layer = Float32(nn.Linear(4, 2))
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     layer(torch.randn(3, 4)).dtype
    torch.float32
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Optional[torch.Tensor]) -> torch.Tensor:
        """Calls the wrapped module on fp32 copies of the arguments."""
        args = tuple(
            a.float() if torch.is_tensor(a) and a.is_floating_point() else a
            for a in args
        )
        device = next((a.device.type for a in args if torch.is_tensor(a)), "cpu")
        with torch.autocast(device, enabled=False):
            return self.module(*args)
