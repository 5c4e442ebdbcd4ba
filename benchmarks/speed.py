"""Inference speed of the DynaMix engine: series-steps per second, side by side for each step implementation.

Cases: (a) 1 series, context 2,000, horizon 10,000; (b) 32 series, context 512, horizon 1,000;
(c) 256 series, context 512, horizon 200; (d) 10,000 series, context 512, horizon 100, with peak memory.
Implementations:

- ``plain``: the straightforward per-step torch implementation (``DynaMix.step``: one torch op per
  equation of the specification, batched over series), the baseline;
- ``torch``: the fused batched torch step (the GPU path);
- ``numba``: the compiled CPU kernel (the default on CPUs).

All run the full ``DynaMixPipeline.forecast`` (preprocessing included) with the gating noise on, on
Lorenz-63 windows. A benchmark script, not a test: it prints figures.

Usage: ``python benchmarks/speed.py [--cases a,b,c,d] [--backends plain,torch,numba] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import time

import numpy as np
import torch

CASES = {
    "a": (1, 2000, 10_000),
    "b": (32, 512, 1000),
    "c": (256, 512, 200),
    "d": (10_000, 512, 100),
}
BACKENDS = {"plain": dict(backend="reference"), "torch": dict(backend="torch"), "numba": dict(backend="numba")}


def contexts(n_series: int, length: int) -> np.ndarray:
    """``(length, n_series, 3)`` Lorenz-63 windows (different stretches of one long trajectory)."""
    from dynamix_forecasting.examples import lorenz63

    traj = lorenz63(length + 4000, dt=0.01).astype(np.float64)
    starts = np.linspace(0, 4000, n_series).astype(int)
    return np.stack([traj[s : s + length] for s in starts], axis=1)


def run_case(case: str, backend: str, repeats: int, device: str = "cpu") -> tuple[float, int]:
    """Best wall time of ``repeats`` forecasts and the process' peak RSS (bytes) afterwards."""
    from dynamix_forecasting import DynaMixPipeline

    n_series, length, horizon = CASES[case]
    pipeline = DynaMixPipeline.from_pretrained(device=device)
    ctx = contexts(n_series, length)
    data = ctx[:, 0] if n_series == 1 else ctx
    pipeline.forecast(data[:, :2] if n_series > 1 else data, 3, seed=0, **BACKENDS[backend])  # warm-up/compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = pipeline.forecast(data, horizon, seed=0, **BACKENDS[backend])
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    assert np.isfinite(out).all()
    return best, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(case: str, backend: str, repeats: int, device: str, queue) -> None:
    torch.set_num_threads(int(os.environ.get("SPEED_THREADS", torch.get_num_threads())))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds, peak = run_case(case, backend, repeats, device)
    queue.put((seconds, peak, base))


def measure(case: str, backend: str, repeats: int, device: str = "cpu") -> tuple[float, int, int]:
    """Run one case in a fresh process, so that its peak memory is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(case, backend, repeats, device, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="a,b,c,d")
    parser.add_argument("--backends", default="plain,torch,numba")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (numba is CPU-only)")
    args = parser.parse_args()
    cases, backends = args.cases.split(","), args.backends.split(",")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")  # fmt: skip
    if args.device != "cpu":
        print(f"device: {torch.cuda.get_device_name()} (peak MB is host memory)")
    print(f"{'case':<6}{'series x ctx x horizon':<26}{'backend':<8}{'seconds':>10}{'series-steps/s':>17}"
          f"{'vs plain':>10}{'peak MB':>10}")  # fmt: skip
    for case in cases:
        n_series, length, horizon = CASES[case]
        plain = None
        for backend in backends:
            repeats = 1 if (backend == "plain" and case in "ad") else args.repeats
            seconds, peak, base = measure(case, backend, repeats, args.device)
            rate = n_series * horizon / seconds
            plain = rate if backend == "plain" else plain
            ratio = f"{rate / plain:.1f}x" if plain else "-"
            shape = f"{n_series} x {length} x {horizon}"
            print(f"{case:<6}{shape:<26}{backend:<8}{seconds:>10.3f}{rate:>17,.0f}{ratio:>10}"
                  f"{(peak - base) / 2**20:>10.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
