"""Training: teacher forcing, the loss going down, checkpoints, resuming, determinism, bad settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dynamix_forecasting import DynaMix, DynaMixConfig, DynaMixPipeline, load_model
from dynamix_forecasting.cli import main as cli_main
from dynamix_forecasting.training import (
    Trainer,
    TrainingSettings,
    WindowSampler,
    teacher_forced_rollout,
    training_loss,
)


def _trajectory(seed: int, n: int = 400) -> np.ndarray:
    t = np.arange(n) * 0.1
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6, size=3)
    return np.stack([np.sin(t + phase[0]), np.cos(1.3 * t + phase[1]), np.sin(0.7 * t + phase[2])], axis=1)


@pytest.fixture
def files(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f"traj{i}.npy"
        np.save(path, _trajectory(i))
        paths.append(str(path))
    return paths


def _settings(tmp_path, files, **overrides) -> TrainingSettings:
    values = dict(
        M=8, N=3, Experts=3, P=1, trajectory_files=files, context_length=60, sequence_length=20, overlap=5,
        windows_per_system=10, batch_size=4, batches_per_epoch=2, epochs=2, eval_every=0, checkpoint_every=1,
        output_dir=str(tmp_path / "run"), name="dynamix-3d-tiny", lr_start=1e-2, lr_end=1e-3, threads=1,
    )  # fmt: skip
    values.update(overrides)
    return TrainingSettings(**values)


def test_one_step_reduces_the_loss_on_a_fixed_batch(tmp_path, files):
    trainer = Trainer(_settings(tmp_path, files))
    context, target, _teacher = trainer.sampler.batch(4, 0)

    def loss() -> float:
        with torch.no_grad():
            pred = teacher_forced_rollout(trainer.model, context, target, 5, noise=False)
            return training_loss(trainer.model, pred, target, 0.1)[0].item()

    before = loss()
    pred = teacher_forced_rollout(trainer.model, context, target, 5, noise=False)
    total, _ = training_loss(trainer.model, pred, target, 0.1)
    trainer.optimizer.zero_grad()
    total.backward()
    trainer.optimizer.step()
    assert loss() < before


def test_teacher_forcing_replaces_exactly_the_observed_entries():
    torch.manual_seed(0)
    model = DynaMix(DynaMixConfig(M=6, N=2, Experts=2, P=1))
    context = torch.randn(30, 3, 2)
    teacher = torch.randn(12, 3, 2)
    seen, outputs = [], []
    original = model.step

    def recording(z, *args, **kwargs):
        seen.append(z.detach().clone())
        out = original(z, *args, **kwargs)
        outputs.append(out.detach().clone())
        return out

    model.step = recording
    preds = teacher_forced_rollout(model, context, teacher, n_interleave=4, noise=False)
    assert preds.shape == (11, 3, 2)
    for call in range(1, len(seen)):  # the state entering step `call + 1` came out of step `call`
        t = call  # that output belongs to time t
        previous = outputs[call - 1]
        if t % 4 == 0:
            assert torch.equal(seen[call][:2], teacher[t].t())  # observed entries replaced by the teacher
            assert torch.equal(seen[call][2:], previous[2:])  # and nothing else
        else:
            assert torch.equal(seen[call], previous)


def test_checkpoint_loads_and_forecasts(tmp_path, files):
    trainer = Trainer(_settings(tmp_path, files))
    rows = trainer.fit(progress=False)
    assert [r["epoch"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
    model = load_model(tmp_path / "run" / "checkpoint" / "dynamix-3d-tiny.safetensors")
    assert model.config == DynaMixConfig(M=8, N=3, Experts=3, P=1)
    from_run_folder = load_model(tmp_path / "run")  # the run's folder loads too
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), from_run_folder.parameters(), strict=True))
    forecast = DynaMixPipeline(model).forecast(_trajectory(5)[:100], 20, seed=0)
    assert forecast.shape == (20, 3) and np.isfinite(forecast).all()
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("epoch,loss") and len(metrics) == 3


def test_resume_continues_where_it_stopped_and_runs_are_repeatable(tmp_path, files):
    full = Trainer(_settings(tmp_path, files, epochs=3, output_dir=str(tmp_path / "full")))
    full.fit(progress=False)
    first = Trainer(_settings(tmp_path, files, epochs=3, output_dir=str(tmp_path / "resumed")))
    first.fit(progress=False, stop_after=2)  # an interrupted run
    resumed = Trainer(_settings(tmp_path, files, epochs=3, output_dir=str(tmp_path / "resumed")))
    assert resumed.epoch == 2
    state = resumed.optimizer.state_dict()["state"]
    saved = first.optimizer.state_dict()["state"]
    assert all(torch.equal(state[k]["exp_avg"], saved[k]["exp_avg"]) for k in saved)
    resumed.fit(progress=False)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # interrupted + resumed == uninterrupted, bit for bit
    again = Trainer(_settings(tmp_path, files, epochs=3, output_dir=str(tmp_path / "again")))
    again.fit(progress=False)
    assert all(torch.equal(a, b) for a, b in zip(full.model.parameters(), again.model.parameters(), strict=True))


def test_fine_tuning_can_freeze_the_experts(tmp_path, files):
    base = tmp_path / "base"
    Trainer(_settings(tmp_path, files, output_dir=str(base))).fit(progress=False)
    init = str(base / "checkpoint" / "dynamix-3d-tiny.safetensors")
    tuned = Trainer(_settings(tmp_path, files, init=init, freeze="experts", output_dir=str(tmp_path / "tuned")))
    before = [p.detach().clone() for p in tuned.model.experts.parameters()]
    gate_before = tuned.model.gating_network.D.detach().clone()
    tuned.fit(progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, tuned.model.experts.parameters(), strict=True))
    assert not torch.equal(gate_before, tuned.model.gating_network.D)


def test_bad_settings_get_clear_errors(tmp_path, files):
    with pytest.raises(ValueError, match="Unknown training settings"):
        TrainingSettings.from_dict({"epochs": 3, "learning_rate": 0.1})
    with pytest.raises(ValueError, match="Unknown training setting 'lr'"):
        TrainingSettings.from_json(None, ["lr=0.1"])
    with pytest.raises(ValueError, match="longer than the overlap"):
        TrainingSettings(context_length=40, overlap=50, sequence_length=100)
    with pytest.raises(ValueError, match="observes N=3"):
        WindowSampler([np.zeros((600, 2))], n_obs=3)
    with pytest.raises(ValueError, match=r"shape \(400, 3\); the model observes N=2"):
        Trainer(_settings(tmp_path, files, N=2, M=8))  # the data has 3 channels, the model 2
    assert TrainingSettings.from_json(None, ["epochs=7", "optimizer=adam"]).epochs == 7


def test_cli_writes_defaults_and_trains(tmp_path, files, capsys):
    defaults = tmp_path / "defaults.json"
    assert cli_main(["train", "--write-defaults", str(defaults)]) == 0
    assert json.loads(defaults.read_text())["n_interleave"] == 10
    settings = _settings(tmp_path, files, epochs=1, output_dir=str(tmp_path / "cli"))
    config = tmp_path / "settings.json"
    settings.to_json(config)
    assert cli_main(["train", "--config", str(config), "--override", "batches_per_epoch=1"]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    assert cli_main(["train", "--config", str(config), "--override", "nonsense=1"]) == 2


def test_evaluation_scores_held_out_trajectories(tmp_path, files):
    held_out = tmp_path / "held_out.npy"
    np.save(held_out, _trajectory(9, 600))
    trainer = Trainer(
        _settings(tmp_path, files, eval_files=[str(held_out)], eval_context=300, eval_horizon=200, eval_samples=2)
    )
    scores = trainer.evaluate()
    assert set(scores) == {"D_stsp", "D_H", "MASE"} and all(np.isfinite(v) for v in scores.values())
