"""Benchmark suite of dynamix-forecasting: DynaMix against foundation models, parroting and statistical baselines.

Run ``python -m benchmarks --help`` from the repository root. Tracks: the Chronos Benchmark II
time-series protocol (``ts``), the DynaMix paper's dynamical-systems protocol (``dsr``) and speed.
"""
