"""DiffAct and MS-TCN backbones with the TST segment refiner (temporal action segmentation) for tal.

``from tal.seg_tst import TSTRefiner, BackboneWithTST, DiffActAdapter`` gives the release's API::

    refiner = TSTRefiner(n_classes=11, feat_dim=192, inner_dim=64)
    model = BackboneWithTST(DiffActAdapter(DiffAct.from_preset("gtea", 11)), refiner, freeze_backbone=True)
"""

from tal.seg_tst.modeling.adapters import AdapterOutput, DiffActAdapter, MSTCNAdapter, SegmentationAdapter
from tal.seg_tst.modeling.diffact import DiffAct
from tal.seg_tst.modeling.meta_arch import BackboneWithTST, SegBackboneModel
from tal.seg_tst.modeling.mstcn import MSTCN, MSTCNPlusPlus
from tal.seg_tst.modeling.tst import TSTOutput, TSTRefiner

__version__ = "0.1.0"

__all__ = [
    "MSTCN",
    "AdapterOutput",
    "BackboneWithTST",
    "DiffAct",
    "DiffActAdapter",
    "MSTCNAdapter",
    "MSTCNPlusPlus",
    "SegBackboneModel",
    "SegmentationAdapter",
    "TSTOutput",
    "TSTRefiner",
]
