"""Models and their building blocks: (batch, time, feats) in, (batch, 1, emb) out.

Nothing here imports from the rest of the package: a lobe is usable on its own
from a SpeechBrain YAML file. The 3D-Speaker key mapping sits beside the model
it converts.
"""

from .eres2net import ERes2Net, ERes2NetBlock
from .features import KaldiFbank, make_front_end
from .fusion import AFF, ConcatFusion, SumFusion, make_fusion
from .pooling import TemporalStatsPool

__all__ = [
    "AFF",
    "ConcatFusion",
    "ERes2Net",
    "ERes2NetBlock",
    "KaldiFbank",
    "SumFusion",
    "TemporalStatsPool",
    "make_fusion",
    "make_front_end",
]
