"""ERes2Net speaker embeddings for SpeechBrain.

Import the building blocks from here, e.g. ``!new:speechbrain_eres2net.ERes2Net``
in a SpeechBrain YAML file.
"""

from .eres2net import ERes2Net, ERes2NetBlock
from .fastpath import embed_long, optimize_for_inference
from .features import KaldiFbank
from .fusion import AFF, ConcatFusion, SumFusion, make_fusion
from .inference import SpeakerEmbedder
from .pooling import TemporalStatsPool

__version__ = "0.1.0"

__all__ = [
    "AFF",
    "ConcatFusion",
    "ERes2Net",
    "ERes2NetBlock",
    "KaldiFbank",
    "SpeakerEmbedder",
    "SumFusion",
    "TemporalStatsPool",
    "embed_long",
    "make_fusion",
    "optimize_for_inference",
]
