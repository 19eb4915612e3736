"""SVTAS-RL networks and objectives: backbones, the block-recurrent head, losses, rewards, the model."""

from tal.stream_rl.modeling.backbones import Conv3dBackbone, FeatureBackbone
from tal.stream_rl.modeling.brt_head import BRTHead, HeadState
from tal.stream_rl.modeling.meta_arch import SVTASRL, ClipResult, build_svtas_rl

__all__ = ["SVTASRL", "BRTHead", "ClipResult", "Conv3dBackbone", "FeatureBackbone", "HeadState", "build_svtas_rl"]
