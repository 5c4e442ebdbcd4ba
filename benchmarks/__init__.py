"""Benchmark suite of dynamix-forecasting: DynaMix against foundation models, parroting and statistical baselines.

Run ``dynamix-bench --help`` (or ``python -m benchmarks --help``). Tracks: the Chronos Benchmark II
time-series protocol (``ts``), the DynaMix paper's dynamical-systems protocol (``dsr``) and speed.
"""
