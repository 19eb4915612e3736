"""Slow, obvious reference implementations (loops that state the algorithm plainly).

They are test code: the tests compare the package's fast paths with them, and
``benchmarks/loc_actionformer_thumos_cpu.py`` runs them as its baseline (it imports them from this
folder of a checkout). They are not shipped in the wheel.
"""
