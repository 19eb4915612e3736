"""The compiled C++ CPU kernels (``torch.ops.tal_ops_ext``, sources in ``tal/cuda_ops/csrc``).

* ``buildcfg``: what is compiled and how (shared with ``setup.py``, importable without torch);
* ``library``: finding, vetting and loading a compiled library, and building one.
"""
