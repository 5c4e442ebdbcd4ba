"""Pre-training and fine-tuning of DynaMix with sparse teacher forcing (see ``dynamix train --help``)."""

from .data import WindowSampler, dysts_trajectories, load_trajectory_file, published_systems
from .settings import TrainingSettings
from .trainer import Trainer, teacher_forced_rollout, training_loss

__all__ = [
    "Trainer",
    "TrainingSettings",
    "WindowSampler",
    "dysts_trajectories",
    "load_trajectory_file",
    "published_systems",
    "teacher_forced_rollout",
    "training_loss",
]
