"""The ActionFormer network, one role per module (the release's ``libs/modeling`` split).

- :mod:`~.blocks`: masked 1-D convs, channel LayerNorm, local and global conv-attention, transformer blocks;
- :mod:`~.backbone`: the ConvTransformer backbone (a pyramid of ``1 + backbone_arch[2]`` levels);
- :mod:`~.neck`: the identity feature pyramid;
- :mod:`~.heads`: the classification and regression heads;
- :mod:`~.points`: the anchor-free points of every level with their regression ranges;
- :mod:`~.losses`: sigmoid focal loss and 1-D DIoU loss;
- :mod:`~.meta_arch`: :class:`~.meta_arch.ActionFormer`, the registered model (label assignment and
  losses in training; candidates handed to :mod:`tal.loc_actionformer.postprocess` at inference).
"""
