"""Sparse-teacher-forcing training of DynaMix on the engine's own model code (:meth:`DynaMix.step`)."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoint import atomic_path, load_model, save_model
from ..config import DynaMixConfig
from ..metrics import geometrical_misalignment, mase, temporal_misalignment
from ..model import DynaMix
from ..pipeline import DynaMixPipeline
from . import fast_step
from .corpus import perturbed_regimes, published_corpus
from .data import WindowSampler, dysts_trajectories, load_trajectory_file, published_systems
from .growth import grow_experts
from .settings import TrainingSettings
from .synthetic import TimeSeriesSampler, synthetic_corpus
from .universe import kept

#: Folder of the DynaMix example series used for evaluation when ``eval_files`` is empty.
EXAMPLES_DIR_ENV = "DYNAMIX_EXAMPLES_DIR"
DEFAULT_EVAL = ("lorenz63", "chua", "sprottM")


def teacher_forced_rollout(
    model: DynaMix,
    context: torch.Tensor,
    teacher: torch.Tensor,
    n_interleave: int,
    generator: torch.Generator | None = None,
    noise: bool = True,
) -> torch.Tensor:
    """Predictions ``(Ts-1, B, N)`` of the observed entries under sparse teacher forcing.

    The initial state is built from the first teacher observation; every ``n_interleave`` steps the
    first ``N`` latent entries are replaced by the teacher observation (and nothing else).
    """
    n = model.N
    encoded = model.gating_network.encode(context)
    z = model.initial_state(teacher[0])
    preds = []
    for t in range(1, teacher.shape[0]):
        eps = torch.randn(n, z.shape[1], generator=generator, device=z.device) if noise else None
        z = model.step(z, context, encoded=encoded, gating_eps=eps)
        preds.append(z[:n])
        if t % n_interleave == 0:
            z = torch.cat([teacher[t].t(), z[n:]], dim=0)
    return torch.stack(preds).transpose(1, 2)


def training_loss(model: DynaMix, pred: torch.Tensor, target: torch.Tensor, gating_noise_weight: float):
    """MSE on the observed entries plus ``lambda * mean(exp(-|sigma_gate| / 0.01))``."""
    mse = torch.mean((pred - target[1:]) ** 2)
    reg = torch.mean(torch.exp(-model.gating_network.sigma.abs() / 0.01))
    return mse + gating_noise_weight * reg, mse


class Trainer:
    """Pre-train or fine-tune a DynaMix model; checkpoints in the released two-file layout, resumable.

    Parameters
    ----------
    settings : TrainingSettings
        All hyper-parameters (defaults: the published recipe).
    sampler : WindowSampler, optional
        Training windows; built from ``settings`` when omitted.
    """

    def __init__(self, settings: TrainingSettings, sampler: WindowSampler | TimeSeriesSampler | None = None) -> None:
        self.s = settings
        if settings.threads and settings.engine != "fast":
            torch.set_num_threads(settings.threads)
        self.device = torch.device(settings.device)
        self.out = Path(settings.output_dir)
        self.model = self._initial_model().to(self.device)
        if self.model.N != settings.N:
            raise ValueError(f"The initial checkpoint observes N={self.model.N} but settings.N={settings.N}.")
        reason = fast_step.supports(self.model)
        if settings.engine == "fast" and reason:
            raise ValueError(f"{reason}; set engine='reference' or 'auto'.")
        # The engine this run uses: 'auto' takes the compiled step wherever it applies.
        self.engine = (
            "fast"
            if settings.engine == "fast" or (settings.engine == "auto" and self.device.type == "cpu" and reason is None)
            else "reference"
        )
        self.sampler = sampler or self._sampler()
        self._freeze()
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = {"radam": torch.optim.RAdam, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[settings.optimizer]
        kwargs = {"weight_decay": settings.weight_decay} if settings.optimizer == "adamw" else {}
        self.optimizer = opt(params, lr=settings.lr_start, foreach=True, **kwargs)
        gamma = (settings.lr_end / settings.lr_start) ** (1.0 / max(1, settings.epochs - 1))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=gamma)
        self.generator = torch.Generator(device=self.device).manual_seed(settings.seed)
        self.epoch = 0
        self._resume()

    # ------------------------------------------------------------------ setup
    def _initial_model(self) -> DynaMix:
        s = self.s
        if s.init:
            model = load_model(s.init)
            if s.grow_experts:
                model = grow_experts(model, s.grow_experts, s.seed)
            for p in model.parameters():
                p.requires_grad_(True)
            for layer in (model.gating_network.mlp_layer1, model.gating_network.mlp_layer2):
                layer.bias.requires_grad_(False)  # released models keep these at zero
            return model.train()
        return DynaMix.random(DynaMixConfig(M=s.M, N=s.N, Experts=s.Experts, P=s.P), s.seed).train()

    def _sampler(self) -> WindowSampler | TimeSeriesSampler:
        s = self.s
        if s.data == "time_series":
            return self._time_series_sampler()
        if s.corpus_dir:
            trajectories = published_corpus(s.corpus_dir, s.corpus_cache, s.n_points)
            if s.extra_regimes:
                systems = [name for name in trajectories if not name.endswith("_regime2")]
                trajectories.update(
                    perturbed_regimes(
                        systems, s.extra_regimes, Path(s.corpus_cache) / "perturbed", s.regime_spread,
                        s.regime_points, s.seed,
                    )
                )  # fmt: skip
        elif s.trajectory_files:
            trajectories = {Path(f).stem: load_trajectory_file(f) for f in s.trajectory_files}
        elif s.universe_dir:
            trajectories = {}
        else:
            trajectories = dysts_trajectories(s.systems or published_systems(), s.n_points, s.regenerate)
        if s.universe_dir:
            trajectories.update(kept(s.universe_dir, s.universe_systems or None))
        return WindowSampler(
            trajectories, s.N, s.context_length, s.sequence_length, s.overlap, s.windows_per_system, s.input_noise,
            s.seed, s.context_lengths, s.rotate_channels,
        )  # fmt: skip

    def _time_series_sampler(self) -> TimeSeriesSampler:
        """Synthetic series (cached: generating 10,000 takes a minute or two), with the corpus's chaotic
        trajectories as the dynamical share when ``corpus_dir`` is set."""
        s = self.s
        trajectories = (
            list(published_corpus(s.corpus_dir, s.corpus_cache, s.n_points).values()) if s.corpus_dir else None
        )
        growth = f"_growth{s.growth_share:g}" if s.growth_share else ""
        kind = "ds" if trajectories else "nods"
        cache = Path(s.corpus_cache) / f"synthetic_{s.ts_series}x{s.ts_length}_seed{s.seed}_{kind}{growth}.npz"
        if cache.exists():
            stored = np.load(cache)
            series, periods = stored["series"], stored["periods"]
        else:
            series, periods = synthetic_corpus(
                s.ts_series, s.ts_length, s.seed, trajectories, growth_share=s.growth_share
            )
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, series=series, periods=periods)
        lengths = s.context_lengths or [s.context_length]
        return TimeSeriesSampler(
            series, periods, s.N, lengths, s.sequence_length, s.input_noise, s.positional_share, s.seed
        )

    def _freeze(self) -> None:
        if self.s.freeze == "experts":
            for p in self.model.experts.parameters():
                p.requires_grad_(False)
        elif self.s.freeze == "gating":
            for p in self.model.gating_network.parameters():
                p.requires_grad_(False)

    @property
    def state_path(self) -> Path:
        return self.out / "trainer_state.pt"

    def _resume(self) -> None:
        if not self.state_path.exists():
            return
        # weights_only: the state is tensors, dicts, lists, numbers and strings; a planted pickle must not run.
        try:
            state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"{self.state_path} is not a trainer state this package wrote ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); it is not loaded. Delete it or pick another output_dir."
            ) from exc
        keys = {"model", "optimizer", "scheduler", "generator", "epoch", "settings"}
        if not isinstance(state, dict) or not keys <= set(state):
            raise ValueError(
                f"{self.state_path} lacks the entries of a trainer state; delete it or pick another output_dir."
            )
        if state["settings"] != self._comparable_settings():
            raise ValueError(
                f"output_dir {str(self.out)!r} holds a run with other settings; pick another output_dir or delete it."
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch = state["epoch"]

    def _comparable_settings(self) -> dict:
        values = json.loads(json.dumps(self.s.__dict__))
        for key in ("epochs", "eval_every", "checkpoint_every", "threads", "device", "corpus_cache"):
            values.pop(key, None)  # a resumed run may run longer or elsewhere
        return values

    # ------------------------------------------------------------------ training
    def train_step(self, index: int) -> tuple[float, float]:
        """One optimizer step on batch ``index``; returns (loss, MSE), both NaN when the batch was skipped because
        its loss or gradient was not finite."""
        context, target, teacher = (t.to(self.device) for t in self.sampler.batch(self.s.batch_size, index))
        self.optimizer.zero_grad(set_to_none=True)
        if self.engine == "fast":
            eps = torch.randn(
                target.shape[0] - 1, self.model.N, target.shape[1], generator=self.generator, device=self.device
            )
            loss_value, mse_value = fast_step.loss_and_gradients(
                self.model, context, target, teacher, self.s.n_interleave, eps, self.s.gating_noise_weight,
                self.s.threads or None,
            )  # fmt: skip
            loss, mse = torch.tensor(loss_value), torch.tensor(mse_value)
        else:
            pred = teacher_forced_rollout(self.model, context, teacher, self.s.n_interleave, self.generator)
            loss, mse = training_loss(self.model, pred, target, self.s.gating_noise_weight)
        if self.engine == "reference" and torch.isfinite(loss):
            loss.backward()
        norm = (
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip) if torch.isfinite(loss) else loss
        )
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            # A rollout that blows up between two teacher-forcing steps (the AL-RNN's ReLU units are unbounded)
            # gives a non-finite loss or gradient; that batch is skipped and counted, and a run whose epochs
            # are mostly such batches stops (see fit).
            self.optimizer.zero_grad(set_to_none=True)
            return float("nan"), float("nan")
        self.optimizer.step()
        if not torch.isfinite(torch.nn.utils.parameters_to_vector(self.model.parameters())).all():
            raise FloatingPointError(
                f"The weights became non-finite at epoch {self.epoch + 1} (batch {index}); the run diverged. "
                "Lower lr_start or grad_clip."
            )
        return loss.item(), mse.item()

    def evaluate(self) -> dict[str, float]:
        """D_stsp, D_H and MASE (10 steps) of forecasts of the held-out trajectories, medians over paths and files."""
        examples = os.environ.get(EXAMPLES_DIR_ENV)
        files = [Path(f) for f in self.s.eval_files] or (
            [Path(examples) / f"{n}.npy" for n in DEFAULT_EVAL] if examples else []
        )
        files = [f for f in files if f.exists()]
        if not files:
            return {}
        self.model.eval()
        pipeline = DynaMixPipeline(self.model)
        scores: dict[str, list[float]] = {"D_stsp": [], "D_H": [], "MASE": []}
        for f in files:
            data = np.load(f)
            ctx = data[: self.s.eval_context]
            truth = data[self.s.eval_context : self.s.eval_context + self.s.eval_horizon]
            with torch.no_grad():
                paths = pipeline.forecast(
                    ctx,
                    truth.shape[0],
                    mode="dynamics",
                    seed=0,
                    divergence_guard=10.0,
                    num_samples=self.s.eval_samples,
                )
            for forecast in paths.reshape(self.s.eval_samples, *truth.shape):
                scores["D_stsp"].append(geometrical_misalignment(forecast, truth))
                scores["D_H"].append(temporal_misalignment(forecast, truth))
                scores["MASE"].append(mase(forecast, truth, steps=10))
        self.model.train()
        return {k: float(np.nanmedian(v)) for k, v in scores.items()}

    def save(self) -> Path:
        """Write the checkpoint (two-file layout) and the trainer state for resuming."""
        self.out.mkdir(parents=True, exist_ok=True)
        weights, _ = save_model(self.model, self.out / "checkpoint", self.s.name)  # refuses non-finite weights
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "settings": self._comparable_settings(),
        }
        with atomic_path(self.state_path) as tmp:
            torch.save(state, tmp)
        return weights

    def fit(self, progress: bool = True, stop_after: int | None = None) -> list[dict]:
        """Train until ``settings.epochs`` (or epoch ``stop_after``); returns the rows written to ``metrics.csv``."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.s.to_json(self.out / "settings.json")
        writer = _MetricsWriter(self.out)
        rows = []
        bar = tqdm(total=self.s.epochs, initial=self.epoch, disable=not progress, desc="training", unit="epoch")
        last = self.s.epochs if stop_after is None else min(stop_after, self.s.epochs)
        while self.epoch < last:
            start = time.perf_counter()
            losses, mses = [], []
            for b in range(self.s.batches_per_epoch):
                loss, mse = self.train_step(self.epoch * self.s.batches_per_epoch + b)
                losses.append(loss)
                mses.append(mse)
            seconds = time.perf_counter() - start
            skipped = int(np.isnan(losses).sum())
            if skipped > self.s.batches_per_epoch // 2:
                raise FloatingPointError(
                    f"{skipped} of the {self.s.batches_per_epoch} batches of epoch {self.epoch + 1} had a non-finite "
                    "loss or gradient; the run diverged and nothing is saved from this epoch. Lower lr_start or "
                    "grad_clip, or check the training data."
                )
            lr = self.scheduler.get_last_lr()[0]  # the rate used in this epoch
            self.scheduler.step()
            self.epoch += 1
            row = {
                "epoch": self.epoch,
                "loss": float(np.nanmean(losses)) if skipped < len(losses) else float("nan"),
                "mse": float(np.nanmean(mses)) if skipped < len(mses) else float("nan"),
                "skipped": skipped,
                "lr": lr,
                "seconds": seconds,
                "sequences_per_s": self.s.batches_per_epoch * self.s.batch_size / seconds,
            }
            if self.s.eval_every and (self.epoch % self.s.eval_every == 0 or self.epoch == self.s.epochs):
                row.update(self.evaluate())
            if self.epoch % self.s.checkpoint_every == 0 or self.epoch in (self.s.epochs, last):
                self.save()
            writer.write(row)
            rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.1e}")
            bar.update(1)
        bar.close()
        writer.close()
        return rows


class _MetricsWriter:
    """``metrics.csv`` (appending when resumed) and TensorBoard scalars when tensorboard is installed."""

    FIELDS = ("epoch", "loss", "mse", "lr", "seconds", "sequences_per_s", "skipped", "D_stsp", "D_H", "MASE")

    def __init__(self, out: Path) -> None:
        self.path = out / "metrics.csv"
        new = not self.path.exists()
        self.file = self.path.open("a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=self.FIELDS)
        if new:
            self.csv.writeheader()
        self.tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except Exception:  # tensorboard is optional
            pass

    def write(self, row: dict) -> None:
        self.csv.writerow({k: row.get(k, "") for k in self.FIELDS})
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "epoch":
                    self.tb.add_scalar(k, v, row["epoch"])

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
