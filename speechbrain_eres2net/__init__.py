"""ERes2Net speaker embeddings for SpeechBrain.

Import the building blocks from here, e.g. ``!new:speechbrain_eres2net.ERes2Net``
in a SpeechBrain YAML file. The subpackages hold one role each (see the README's
"Layout"): ``lobes``, ``nnet``, ``dataio``, ``augment``, ``training``,
``inference``, ``evaluation``, ``export`` and ``cli``.
"""

from .lobes import (
    AFF,
    ConcatFusion,
    ERes2Net,
    ERes2NetBlock,
    KaldiFbank,
    SumFusion,
    TemporalStatsPool,
    make_fusion,
)

__version__ = "0.4.0"

# Imported on first use, so that ``import speechbrain_eres2net`` (and every
# ``!new:speechbrain_eres2net.ERes2Net`` in a YAML file) loads the model alone,
# not SpeechBrain's inference stack.
_LAZY = {
    "FolderPretrainer": "inference.folder",
    "SpeakerEmbedder": "inference.embedder",
    "Verifier": "evaluation.decisions",
    "embed_long": "inference.long",
    "optimize_for_inference": "inference.fastpath",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AFF",
    "ConcatFusion",
    "ERes2Net",
    "ERes2NetBlock",
    "FolderPretrainer",
    "KaldiFbank",
    "SpeakerEmbedder",
    "SumFusion",
    "TemporalStatsPool",
    "Verifier",
    "embed_long",
    "make_fusion",
    "optimize_for_inference",
]
