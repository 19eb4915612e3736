"""tal-stream-rl: SVTAS-RL streaming temporal action segmentation.

``build_model("gtea", input_dim=2048, num_classes=11)`` makes a model with a preset's settings;
:class:`StreamingSegmenter` runs it on a video that arrives piece by piece.
"""

from tal.stream_rl.clips import ClipSpec
from tal.stream_rl.modeling.meta_arch import SVTASRL, build_svtas_rl
from tal.stream_rl.presets import build_model
from tal.stream_rl.streaming import StreamingSegmenter, StreamOutput, segment_offline

__version__ = "0.1.0"

__all__ = [
    "SVTASRL",
    "ClipSpec",
    "StreamOutput",
    "StreamingSegmenter",
    "build_model",
    "build_svtas_rl",
    "segment_offline",
]
