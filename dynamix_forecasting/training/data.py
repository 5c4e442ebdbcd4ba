"""Training data: trajectories, standardized per trajectory, cut into (context, training sequence) windows.

The published recipe: trajectories of chaotic flows at 50 points per period, standardized per
trajectory; N random windows per system of ``context_length + sequence_length - overlap`` steps,
whose first ``context_length`` points are the context and whose last ``sequence_length`` points are
the training sequence (overlapping the context's last ``overlap`` points).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

#: Folder of stored dysts trajectories (``<system>.npy`` and ``index.json``), when no folder is passed.
DYSTS_DIR_ENV = "DYNAMIX_DYSTS_DIR"


def dysts_dir(folder: str | Path | None = None) -> Path | None:
    """The folder of stored dysts trajectories: ``folder``, else ``$DYNAMIX_DYSTS_DIR``, else None."""
    if folder:
        return Path(folder)
    env = os.environ.get(DYSTS_DIR_ENV)
    return Path(env) if env else None


#: The 30 dysts systems of DynaMix's published training corpus (Hemmer & Durstewitz 2025, appendix), so that
#: ``dynamix train`` works on a fresh machine: without stored trajectories they are integrated with dysts.
TRAINING_SYSTEMS = (
    "Aizawa", "AnishchenkoAstakhov", "Arneodo", "BelousovZhabotinsky", "Blasius", "CaTwoPlus",
    "CellularNeuralNetwork", "Chen", "Colpitts", "ExcitableCell", "ForcedBrusselator", "GlycolyticOscillation",
    "HastingsPowell", "LorenzBounded", "LuChenCheng", "NewtonLiepnik", "QiChen", "RabinovichFabrikant",
    "RayleighBenard", "RikitakeDynamo", "Rossler", "Rucklidge", "SaltonSea", "ShimizuMorioka", "SprottE",
    "SprottH", "SprottJ", "SprottJerk", "SprottK", "SprottN",
)  # fmt: skip


def published_systems(index_path: str | Path | None = None) -> list[str]:
    """The dysts systems of DynaMix's training corpus (``in_dynamix_training_set`` in the dysts index).

    The index is ``index_path``, else ``$DYNAMIX_DYSTS_DIR/index.json``; without either, the built-in list
    :data:`TRAINING_SYSTEMS` (the same 30 systems).
    """
    folder = dysts_dir()
    path = Path(index_path) if index_path else (folder / "index.json" if folder else None)
    if path is None and index_path is None:
        return list(TRAINING_SYSTEMS)
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"No dysts index at {path}; pass the system names explicitly, or point {DYSTS_DIR_ENV} at the folder "
            "of stored dysts trajectories (with index.json), or unset it to integrate the 30 training systems "
            "with dysts."
        )
    index = json.loads(path.read_text())
    return [name for name, info in index.items() if info.get("in_dynamix_training_set") and "error" not in info]


def integrate_dysts(name: str, n_points: int) -> np.ndarray:
    """A dysts system's trajectory from its stored initial condition: DOP853, rtol = atol = 1e-10, 50 points per
    period (needs the ``dysts`` package)."""
    try:
        import dysts.flows as flows
    except ImportError as exc:
        raise ImportError(
            f"Integrating {name!r} needs the dysts package (pip install dysts), or stored trajectories: set "
            f"corpus_dir (e.g. ../shared/data/dysts-train-100k) or {DYSTS_DIR_ENV} to a folder of <system>.npy files."
        ) from exc
    system = getattr(flows, name)()
    return np.asarray(
        system.make_trajectory(n_points, pts_per_period=50, method="DOP853", rtol=1e-10, atol=1e-10), dtype=np.float64
    )


def dysts_trajectories(
    names: list[str], n_points: int = 100_000, regenerate: bool = False, folder: str | Path | None = None
) -> dict[str, np.ndarray]:
    """Trajectories by system name: the stored ones (``folder``, default ``$DYNAMIX_DYSTS_DIR``) or new
    ones integrated with ``dysts`` (DOP853, rtol = atol = 1e-10, 50 points per period)."""
    out = {}
    stored = dysts_dir(folder)
    for name in names:
        path = stored / f"{name}.npy" if stored else None
        if not regenerate and path is not None and path.exists():
            out[name] = np.load(path)[:n_points].astype(np.float64)
            if out[name].shape[0] < n_points:
                warnings.warn(
                    f"The stored trajectory of {name} has {out[name].shape[0]} points, fewer than n_points={n_points}; "
                    "training uses it as it is. Set regenerate=true to integrate n_points with dysts, or lower "
                    "n_points to silence this.",
                    UserWarning,
                    stacklevel=2,
                )
            continue
        out[name] = integrate_dysts(name, n_points)
    return out


def load_trajectory_file(path: str | Path) -> np.ndarray:
    """A trajectory ``(T, N)`` from ``.npy`` or a CSV of numeric columns."""
    path = Path(path)
    if path.suffix == ".npy":
        data = np.load(path)
    elif path.suffix == ".csv":
        data = pd.read_csv(path).select_dtypes("number").to_numpy()
    else:
        raise ValueError(f"Trajectory files must be .npy or .csv, got {path}.")
    return np.asarray(data, dtype=np.float64).reshape(len(data), -1)


class WindowSampler:
    """Seedable batches of (context, training sequence) windows from standardized trajectories.

    Parameters
    ----------
    trajectories : dict of str to numpy.ndarray or list of numpy.ndarray
        ``(T, N)`` trajectories; each is standardized on its own.
    n_obs : int
        The model's observation dimension ``N``; every trajectory must have it.
    context_length, sequence_length, overlap : int
        Window layout (500, 100, 50 in the published recipe).
    windows_per_system : int
        Random windows drawn once per trajectory (1,000 in the recipe).
    input_noise : float
        Standard deviation of the Gaussian noise on the teacher signal.
    seed : int
        Seed of the window positions and of every batch.
    context_lengths : sequence of int, optional
        Context lengths to draw from, one per batch (uniformly); every context ends at the same point, the
        training sequence's overlap with it unchanged (``context_length`` is then ignored). Default:
        ``context_length`` only.
    rotate : bool, default False
        Augmentation: mix each window's channels by a random rotation, then rescale each mixed channel to
        the trajectory's unit variance, so the model sees every attractor in many orientations.
    """

    def __init__(
        self,
        trajectories,
        n_obs: int,
        context_length: int = 500,
        sequence_length: int = 100,
        overlap: int = 50,
        windows_per_system: int = 1000,
        input_noise: float = 0.05,
        seed: int = 0,
        context_lengths: list[int] | tuple[int, ...] | None = None,
        rotate: bool = False,
    ) -> None:
        items = trajectories.items() if isinstance(trajectories, dict) else enumerate(trajectories)
        if overlap >= sequence_length or overlap < 0:
            raise ValueError(f"overlap ({overlap}) must lie in [0, sequence_length={sequence_length}).")
        if context_length <= overlap:
            raise ValueError(
                f"context_length ({context_length}) must exceed the overlap ({overlap}) of the training sequence "
                "with the context."
            )
        lengths = tuple(context_lengths) if context_lengths else (context_length,)
        if any(c <= overlap for c in lengths):
            raise ValueError(f"Every context length {lengths} must exceed the overlap ({overlap}).")
        self.context_lengths = lengths
        context_length = max(lengths)
        self.window = context_length + sequence_length - overlap
        self.context_length, self.sequence_length, self.input_noise = context_length, sequence_length, input_noise
        self.names, self.data = [], []
        for name, traj in items:
            traj = np.asarray(traj, dtype=np.float64)
            if traj.ndim != 2 or traj.shape[1] != n_obs:
                raise ValueError(
                    f"Trajectory {name!r} has shape {traj.shape}; the model observes N={n_obs} channels. Pick "
                    "trajectories with N columns or set the model's N to match."
                )
            if not np.isfinite(traj).all():
                raise ValueError(f"Trajectory {name!r} contains NaN/inf values.")
            if traj.shape[0] < self.window:
                raise ValueError(f"Trajectory {name!r} has {traj.shape[0]} points; a window needs {self.window}.")
            std = traj.std(0)
            self.data.append(((traj - traj.mean(0)) / np.where(std > 0, std, 1.0)).astype(np.float32))
            self.names.append(str(name))
        if not self.data:
            raise ValueError("No training trajectories.")
        self.rotate = rotate
        self.covariances = [np.cov(d.T.astype(np.float64)).reshape(n_obs, n_obs) for d in self.data] if rotate else []
        rng = np.random.default_rng(seed)
        self.starts = [rng.integers(0, d.shape[0] - self.window + 1, size=windows_per_system) for d in self.data]
        self.seed = seed

    def _rotated(self, windows: np.ndarray, systems: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each window's channels mixed by a random orthogonal matrix, each mixed channel rescaled to unit
        variance over the whole trajectory (from its covariance, so the scale is the window's own only
        through the rotation)."""
        out = np.empty_like(windows)
        n = windows.shape[2]
        for b, s in enumerate(systems):
            q, r = np.linalg.qr(rng.standard_normal((n, n)))
            q = q * np.sign(np.diag(r))  # uniformly distributed over the orthogonal group
            std = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", q, self.covariances[s], q), 1e-12, None))
            out[:, b] = (windows[:, b] @ q.T / std).astype(np.float32)
        return out

    def batch(self, batch_size: int, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batch number ``index`` (deterministic given the seed): context ``(Tc, B, N)``, clean targets and
        noisy teacher signal, both ``(Ts, B, N)``."""
        rng = np.random.default_rng([self.seed, index])
        systems = rng.integers(0, len(self.data), size=batch_size)
        windows = np.stack(
            [self.data[s][self.starts[s][rng.integers(0, self.starts[s].shape[0])] :][: self.window] for s in systems],
            axis=1,
        )  # (window, B, N)
        if self.rotate:
            windows = self._rotated(windows, systems, rng)
        length = self.context_length
        # one draw more only when there is a choice, so fixed-length runs keep their batches
        if len(self.context_lengths) > 1:
            length = int(self.context_lengths[rng.integers(0, len(self.context_lengths))])
        context = torch.from_numpy(windows[self.context_length - length : self.context_length])
        target = torch.from_numpy(windows[-self.sequence_length :])
        noise = torch.from_numpy(rng.standard_normal(target.shape).astype(np.float32)) * self.input_noise
        return context, target, target + noise
