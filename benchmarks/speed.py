"""Inference speed of the DynaMix engine: series-steps per second, side by side for each step implementation.

Cases: (a) 1 series, context 2,000, horizon 10,000; (b) 32 series, context 512, horizon 1,000;
(c) 256 series, context 512, horizon 200; (d) 10,000 series, context 512, horizon 100, with peak memory.
Implementations:

- ``plain``: the straightforward per-step torch implementation (``DynaMix.step``: one torch op per
  equation of the specification, batched over series), the baseline;
- ``torch``: the fused batched torch step (the GPU path);
- ``numba``: the compiled CPU kernel (the default on CPUs);
- ``triton``: the fused GPU kernel (CUDA only; opt-in).

All run the full ``DynaMixPipeline.forecast`` (preprocessing included) with the gating noise on, on
Lorenz-63 windows. ``--engine-only`` times the engine call alone (``engine.roll_rows`` on prepared,
standardized contexts: the device rollout without the host's preprocessing), which is what the GPU targets
are about. A benchmark script, not a test: it prints figures.

Usage: ``python benchmarks/speed.py [--cases a,b,c,d] [--backends plain,torch,numba] [--repeats 3]``;
on a GPU: ``python benchmarks/speed.py --device cuda --cases a,c,e,f --backends torch,triton --engine-only``

A/B against an earlier revision: ``python benchmarks/speed.py --ab REV [--rounds 4] [--cases a,b,c]`` checks
REV out into a temporary git worktree and times ``DynaMixPipeline.forecast(x, H, seed=0)`` (the released model
from ``../shared``, the default backend, noise on) of that tree and of this one in alternating fresh
processes on the same inputs, and prints each round and the best of each side.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

CASES = {
    "a": (1, 2000, 10_000),
    "b": (32, 512, 1000),
    "c": (256, 512, 200),
    "d": (10_000, 512, 100),
    # GPU sizes (issue 26's targets): run them with --device cuda, best with --engine-only.
    "e": (100_000, 512, 100),
    "f": (1_000_000, 64, 100),
}
BACKENDS = {
    "plain": dict(backend="reference"),
    "torch": dict(backend="torch"),
    "numba": dict(backend="numba"),
    "triton": dict(backend="triton"),
}


def _memory(field: str = "VmHWM") -> int:
    """This process' peak (``VmHWM``) or current (``VmRSS``) resident memory in bytes.

    Read from ``/proc/self/status``, which starts afresh in a spawned process; ``ru_maxrss`` would carry the
    parent's high-water mark over the exec and hide a child's smaller peak. Falls back to ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
    return best, _memory()


def run_engine(case: str, backend: str, repeats: int, device: str = "cpu") -> tuple[float, int]:
    """Best wall time of ``repeats`` engine calls (``roll_rows``, noise on) on prepared contexts."""
    from dynamix_forecasting import load_model
    from dynamix_forecasting.engine import roll_rows

    n_series, length, horizon = CASES[case]
    model = load_model("dynamix-3d-alrnn-v1.0", device=device)
    ctx = contexts(n_series, length).transpose(1, 0, 2)
    ctx = ((ctx - ctx.mean(1, keepdims=True)) / ctx.std(1, keepdims=True)).astype(np.float32)
    lengths = np.full(n_series, length)
    kind = "reference" if backend == "plain" else backend

    def call(h: int) -> np.ndarray:
        obs, _, _ = roll_rows(
            model, ctx, lengths, ctx[:, -1], h, num_samples=1, seed=0, noise=True, guard=None, batch_size=None,
            progress=False, step_kind=kind, n_obs=3, stacklevel=1, warn=False,
        )  # fmt: skip
        return obs

    call(3)  # warm-up / compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = call(horizon)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    assert out.shape == (n_series, horizon, 3)
    return best, _memory()


def _child(case: str, backend: str, repeats: int, device: str, engine_only: bool, queue) -> None:
    torch.set_num_threads(int(os.environ.get("SPEED_THREADS", torch.get_num_threads())))
    base = _memory("VmRSS")
    seconds, peak = (run_engine if engine_only else run_case)(case, backend, repeats, device)
    queue.put((seconds, peak, base))


def measure(
    case: str, backend: str, repeats: int, device: str = "cpu", engine_only: bool = False
) -> tuple[float, int, int]:
    """Run one case in a fresh process, so that its peak memory is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(case, backend, repeats, device, engine_only, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


_AB_CHILD = """
import sys, time
import numpy as np
from dynamix_forecasting import DynaMixPipeline
data, horizon, repeats = np.load(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pipeline = DynaMixPipeline.from_pretrained(sys.argv[4])
pipeline.forecast(data[:, :2] if data.ndim == 3 else data, 3, seed=0)  # compile / warm up
best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    pipeline.forecast(data, horizon, seed=0)
    best = min(best, time.perf_counter() - start)
print(best)
"""


def ab(rev: str, cases: list[str], rounds: int, repeats: int) -> None:
    """Time this tree against revision ``rev`` in alternating fresh processes (see the module docstring)."""
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parents[1]
    model = root.parent / "shared" / "models" / "dynamix" / "dynamix-3d-alrnn-v1.0.safetensors"
    with tempfile.TemporaryDirectory(prefix="dynamix-ab-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(old), rev], check=True,
                       capture_output=True)  # fmt: skip
        try:
            print(f"A/B: {rev} (old) against the working tree (new); best of {repeats} per process, {rounds} rounds")
            for case in cases:
                n_series, length, horizon = CASES[case]
                ctx = contexts(n_series, length)
                path = Path(tmp) / f"{case}.npy"
                np.save(path, ctx[:, 0] if n_series == 1 else ctx)
                best = {"old": float("inf"), "new": float("inf")}
                for r in range(rounds):
                    for side, tree in (("old", old), ("new", root)):
                        env = {**os.environ, "PYTHONPATH": str(tree)}
                        out = subprocess.run(
                            [sys.executable, "-c", _AB_CHILD, str(path), str(horizon), str(repeats), str(model)],
                            env=env, capture_output=True, text=True, check=True, cwd=tree,
                        )  # fmt: skip
                        seconds = float(out.stdout.strip().splitlines()[-1])
                        best[side] = min(best[side], seconds)
                        rate = n_series * horizon / seconds
                        print(f"  case {case} round {r} {side}: {rate:>12,.0f} series-steps/s", flush=True)
                old_rate, new_rate = (n_series * horizon / best[k] for k in ("old", "new"))
                print(f"case {case} ({n_series} x {length} x {horizon}): old {old_rate:,.0f}, new {new_rate:,.0f} "
                      f"series-steps/s, new/old {new_rate / old_rate:.2f}x", flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(old)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="a,b,c,d")
    parser.add_argument("--backends", default="plain,torch,numba")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (numba is CPU-only)")
    parser.add_argument("--ab", metavar="REV", help="time the working tree against git revision REV (see above)")
    parser.add_argument("--rounds", type=int, default=4, help="A/B: alternating rounds")
    parser.add_argument("--engine-only", action="store_true", help="time the engine call alone (see above)")
    args = parser.parse_args()
    cases, backends = args.cases.split(","), args.backends.split(",")
    if args.ab:
        ab(args.ab, cases, args.rounds, args.repeats)
        return

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")  # fmt: skip
    if args.device != "cpu":
        print(f"device: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda} (peak MB is host memory)")
    if args.engine_only:
        print("engine only: roll_rows on prepared contexts (no preprocessing)")
    print(f"{'case':<6}{'series x ctx x horizon':<26}{'backend':<8}{'seconds':>10}{'series-steps/s':>17}"
          f"{'vs plain':>10}{'peak MB':>10}")  # fmt: skip
    for case in cases:
        n_series, length, horizon = CASES[case]
        plain = None
        for backend in backends:
            repeats = 1 if (backend == "plain" and case in "ad") else args.repeats
            seconds, peak, base = measure(case, backend, repeats, args.device, args.engine_only)
            rate = n_series * horizon / seconds
            plain = rate if backend == "plain" else plain
            ratio = f"{rate / plain:.1f}x" if plain else "-"
            shape = f"{n_series} x {length} x {horizon}"
            print(f"{case:<6}{shape:<26}{backend:<8}{seconds:>10.3f}{rate:>17,.0f}{ratio:>10}"
                  f"{(peak - base) / 2**20:>10.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------- against the foundation models
#: The models of the comparison: DynaMix's default time-series mode (what the adapters run), its published
#: pipeline as benchmarked (100 sample paths) and with one path, and the Chronos
#: architectures with random weights (see benchmarks/architectures.py).
FOUNDATION_MODELS = [
    "dynamix_ts",
    "dynamix",
    "dynamix_1path",
    "chronos_bolt_tiny",
    "chronos_bolt_mini",
    "chronos_bolt_small",
    "chronos_bolt_base",
    "chronos_2",
]
#: Workloads: (a) the time-series tasks' single windows; (b) one long series far ahead; (c) a large panel.
LONG = (2048, 10_000)
PANEL = (10_000, 512, 64)


def panel_histories(n: int, length: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` seasonal random-walk series of ``length`` points (the panel workload's inputs)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    season = np.sin(2 * np.pi * t / 24)[None] * rng.uniform(0.5, 2.0, (n, 1))
    return list(season + rng.standard_normal((n, length)).cumsum(1) * 0.1 + rng.uniform(5, 50, (n, 1)))


def _bench_model(name: str, folder: Path):
    """The benchmark's model for a comparison name (Chronos architectures built with random weights)."""
    from benchmarks import architectures
    from benchmarks.models import Chronos, DynaMixBenchModel, DynaMixTimeSeries

    if name == "dynamix_ts":
        return DynaMixTimeSeries()
    if name == "dynamix":
        return DynaMixBenchModel(num_samples=100)
    if name == "dynamix_1path":
        model = DynaMixBenchModel(num_samples=1)
        model.name = "dynamix_1path"
        return model
    model = Chronos(name, path=str(architectures.build(name, folder)))
    model.name = f"{name}[random]"
    return model


def _timed(
    model, histories: list[np.ndarray], horizon: int, season: int, budget: float, chunk: int
) -> tuple[float, int]:
    """Seconds for the first ``done`` series, in calls of ``chunk`` series until ``budget`` seconds have passed."""
    done, start = 0, time.perf_counter()
    while done < len(histories):
        model.forecast_ts(histories[done : done + chunk], horizon, season)
        done = min(done + chunk, len(histories))
        if time.perf_counter() - start > budget:
            break
    return time.perf_counter() - start, done


def _foundation_child(name: str, folder: str, quick: bool, queue) -> None:
    import warnings

    from benchmarks import architectures
    from benchmarks import data as bench_data

    torch.set_num_threads(int(os.environ.get("SPEED_THREADS", torch.get_num_threads())))
    warnings.simplefilter("ignore")  # Chronos warns about long horizons; DynaMix divergence is bounded
    base = _memory("VmRSS")  # the interpreter with torch and numpy loaded
    model = _bench_model(name, Path(folder))
    random_weights = name.startswith("chronos")
    note = architectures.RANDOM_WEIGHTS_NOTE if random_weights else ""
    # DynaMix forecasts a whole task in one batched call; Chronos in the benchmark's batches of 256.
    chunk = 10**9 if name.startswith("dynamix") else 256
    model.forecast_ts(panel_histories(4, 64), 8, 1)  # warm-up: numba compilation, first-call overheads
    rows: list[dict] = []

    def add(task: str, seconds: float, done: int, total: int) -> None:
        extra = "" if done == total else f"measured on {done} of {total} series"
        rows.extend(
            dict(track="speed", task=task, model=model.name, metric=m, value=v, seconds=seconds,
                 note="; ".join(s for s in (note, extra) if s))
            for m, v in (("seconds", seconds * total / done), ("seconds_per_series", seconds / done), ("series", total))
        )  # fmt: skip

    tasks = ["monash_m3_yearly", "monash_tourism_quarterly", "ETTh"] if quick else list(bench_data.task_specs())
    for task_name in tasks:
        task = bench_data.load_task(task_name, 20 if quick else None)
        histories = task.histories  # missing values as in the accuracy track: each model handles its own
        seconds, done = _timed(model, histories, task.horizon, task.seasonality, 2.0 if quick else 10.0, chunk)
        add(f"fm_a:{task_name}", seconds, done, len(histories))
    from dynamix_forecasting.examples import lorenz63

    context, horizon = (512, 1000) if quick else LONG
    series = lorenz63(context, dt=0.02)[:, 0]
    seconds, done = _timed(model, [series], horizon, 1, float("inf"), 1)
    add(f"fm_b:long_{context}x{horizon}", seconds, done, 1)
    n, length, horizon = (200, 512, 64) if quick else PANEL
    seconds, done = _timed(model, panel_histories(n, length), horizon, 24, 3.0 if quick else 30.0, chunk)
    add(f"fm_c:panel_{n}x{length}x{horizon}", seconds, done, n)
    if random_weights:
        params = architectures.parameter_count(architectures.build(name, Path(folder)))
    else:
        params = sum(p.numel() for p in model.pipeline.model.parameters())
    peak = _memory() - base
    rows.extend(
        dict(track="speed", task="fm:model", model=model.name, metric=m, value=v, note=note)
        for m, v in (("parameters", float(params)), ("peak_mb", peak / 2**20))
    )
    queue.put(rows)


def architectures_folder() -> Path:
    """Where the random-weight Chronos models are kept between runs (about 1.6 GB; never in the results)."""
    import tempfile

    return Path(os.environ.get("DYNAMIX_ARCH_CACHE", Path(tempfile.gettempdir()) / "dynamix-chronos-architectures"))


def compare_foundation_models(results, quick: bool, models: list[str] | None = None) -> None:
    """The speed comparison with the foundation models: each model in a fresh process (its own peak memory),
    with the same torch threads; rows go to the speed track of ``results``."""
    folder = architectures_folder()
    folder.mkdir(parents=True, exist_ok=True)
    names = models or (["dynamix_ts", "dynamix", "dynamix_1path", "chronos_bolt_tiny"] if quick else FOUNDATION_MODELS)
    for name in names:
        label = f"{name}[random]" if name.startswith("chronos") else name
        if results.done("speed", "fm:model", label):
            continue
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_foundation_child, args=(name, str(folder), quick, queue))
        proc.start()
        rows = queue.get()
        proc.join()
        results.add(rows)
