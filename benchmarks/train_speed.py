"""Training throughput: the fast trainer against the reference-step trainer and a plain batched torch loop.

All three run the published recipe's step (context 500, sequence 100, teacher forcing every 10 steps, batch 16,
the released sizes M = 30, 10 experts) on the same windows, one after the other in this process, so their ratios
hold on a shared machine. Usage::

    python -m benchmarks.train_speed [--seconds 20] [--batch-size 16] [--corpus ../shared/data/dysts-train-100k]

``--device cuda`` times the trainers that run on a GPU (today the reference step, autograd on the device; the
fast engine is CPU-only), at ``--batch-size`` (e.g. 16, 256, 2048).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dynamix_forecasting import DynaMix
from dynamix_forecasting.training import Trainer, TrainingSettings, WindowSampler


def _trajectories(corpus: str | None) -> dict[str, np.ndarray]:
    if corpus and (Path(corpus) / "index.json").exists():
        return {p.stem: np.load(p)[:20_000] for p in sorted(Path(corpus).glob("*.npy"))}
    t = np.arange(20_000) * 0.05  # no corpus at hand: quasi-periodic 3-D curves of the same length
    return {f"curve{i}": np.stack([np.sin(t * (1 + i / 7)), np.cos(1.3 * t), np.sin(0.7 * t + i)], 1) for i in range(6)}


def plain_batched_loop(sampler: WindowSampler, batch_size: int, seconds: float) -> float:
    """Sequences/s of the obvious batched torch step: experts stacked into one einsum, autograd, Adam."""
    model = DynaMix.random(None, 0)
    A = torch.nn.Parameter(torch.stack([e.A.detach() for e in model.experts]))  # (J, M)
    W = torch.nn.Parameter(torch.stack([e.W.detach() for e in model.experts]))  # (J, M, M)
    h = torch.nn.Parameter(torch.stack([e.h.detach() for e in model.experts]))  # (J, M)
    gate = model.gating_network
    params = [A, W, h, *gate.parameters(), model.B]
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=1e-3)
    n, p_relu = model.N, model.config.P
    done, start, index = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        context, target, teacher = sampler.batch(batch_size, index)
        index += 1
        encoded = gate.encode(context)
        z = model.initial_state(teacher[0]).t()  # (B, M)
        loss = torch.zeros(())
        for t in range(1, teacher.shape[0]):
            weights = gate(context, z.t(), encoded=encoded, eps=torch.randn(n, batch_size)).t()  # (B, J)
            phi = torch.cat([z[:, :-p_relu], torch.relu(z[:, -p_relu:])], 1)
            out = A.unsqueeze(0) * z.unsqueeze(1) + torch.einsum("jmi,bi->bjm", W, phi) + h.unsqueeze(0)
            z = torch.einsum("bj,bjm->bm", weights, out)
            loss = loss + ((z[:, :n] - target[t]) ** 2).mean()
            if t % 10 == 0:
                z = torch.cat([teacher[t], z[:, n:]], 1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        done += batch_size
    return done / (time.perf_counter() - start)


def trainer_speed(engine: str, trajectories: dict, batch_size: int, seconds: float, device: str = "cpu") -> float:
    """Sequences/s of :class:`Trainer.train_step` with ``engine``, after one warm-up step (compilation)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = TrainingSettings(
            trajectory_files=[], output_dir=tmp, engine=engine, batch_size=batch_size, eval_every=0,
            windows_per_system=200, device=device,
        )  # fmt: skip
        sampler = WindowSampler(trajectories, 3, 500, 100, 50, 200, 0.05, 0)
        trainer = Trainer(settings, sampler=sampler)
        trainer.train_step(0)
        done, start, index = 0, time.perf_counter(), 1
        while time.perf_counter() - start < seconds:
            trainer.train_step(index)
            index += 1
            done += batch_size
        return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per trainer")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--corpus", default=os.environ.get("DYNAMIX_TRAIN_CORPUS", "../shared/data/dysts-train-100k"))
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the trainers that run on a GPU")
    args = parser.parse_args(argv)
    trajectories = _trajectories(args.corpus)
    if args.device != "cpu":
        speed = trainer_speed("reference", trajectories, args.batch_size, args.seconds, args.device)
        name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
        print(f"device: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}; batch {args.batch_size}")
        print(f"| reference step (autograd on DynaMix.step) on {args.device} | {speed:,.0f} sequences/s |")
        return
    sampler = WindowSampler(trajectories, 3, 500, 100, 50, 200, 0.05, 0)
    rows = {
        "reference step (autograd on DynaMix.step)": trainer_speed("reference", trajectories, args.batch_size,
                                                                   args.seconds),
        "plain batched torch loop (einsum, autograd)": plain_batched_loop(sampler, args.batch_size, args.seconds),
        "fast trainer (engine='fast')": trainer_speed("fast", trajectories, args.batch_size, args.seconds),
    }  # fmt: skip
    base = rows["plain batched torch loop (einsum, autograd)"]
    ref = rows["reference step (autograd on DynaMix.step)"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads; batch {args.batch_size}, {args.seconds:.0f} s each")  # fmt: skip
    print("| trainer | sequences/s | x plain loop | x reference step | full recipe (1.6 M sequences) |")
    print("|---|---|---|---|---|")
    for name, speed in rows.items():
        hours = 1_600_000 / speed / 3600
        print(f"| {name} | {speed:,.0f} | {speed / base:.2f} | {speed / ref:.2f} | {hours:.2f} h |")


if __name__ == "__main__":
    main()
