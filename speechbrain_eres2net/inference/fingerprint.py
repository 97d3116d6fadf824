"""The fingerprint of a model: what names the weights that made an embedding.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import hashlib
from typing import Optional

import torch
from torch import nn


def model_fingerprint(*modules: Optional[nn.Module]) -> str:
    """SHA-256 (hex, 16 characters) of the modules' weights and buffers.

    It names the model that made an embedding, whatever folder or Hub id it
    came from: embeddings of two models are never compared.

    Example
    -------
    >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> fa, fb = model_fingerprint(a), model_fingerprint(b)
    >>> fa == model_fingerprint(a), fa == fb, len(fa)
    (True, False, 16)
    """
    sha = hashlib.sha256()
    for module in modules:
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            sha.update(name.encode())
            if isinstance(tensor, torch.Tensor):
                data = tensor.detach().to("cpu", torch.float32).contiguous()
                sha.update(data.numpy().tobytes())
    return sha.hexdigest()[:16]
