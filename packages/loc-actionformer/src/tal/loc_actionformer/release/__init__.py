"""The release's world: its config files (package data) and their translation into tal experiments,
its checkpoint layout, and the presets made of its configs.

It reaches the core through two hooks of :mod:`tal.loc_actionformer.plugin`: the config format
``actionformer-release`` (:mod:`~.translate`) and the checkpoint format ``actionformer-release``
(:mod:`~.checkpoint`).
"""
