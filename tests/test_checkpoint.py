"""Checkpoint resolution, the Julia BSON reader, saving and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dynamix_forecasting import CheckpointNotFoundError, DynaMix, DynaMixConfig, DynaMixPipeline, load_model, save_model
from dynamix_forecasting.checkpoint import BUNDLED_DIR, config_filename

from .conftest import SHARED, _require

MODEL_DIR = BUNDLED_DIR
JULIA_FILE = SHARED / "models" / "dynamix" / "dynamix-3d-alrnn-v1.0.bson"


def test_released_model_loads_strict_with_published_size(released_model):
    assert released_model.config == DynaMixConfig(M=30, N=3, Experts=10, P=2)
    assert sum(p.numel() for p in released_model.parameters()) == 10256
    # trained values, not the initialisation
    assert abs(released_model.gating_network.softmax_temp1.item() - 0.0591) < 1e-3


def test_julia_bson_gives_the_same_weights(released_model):
    _require(JULIA_FILE)
    julia = load_model(JULIA_FILE)
    for key, value in released_model.state_dict().items():
        assert torch.equal(value, julia.state_dict()[key]), key


def test_name_resolves_through_env_dir(monkeypatch, released_model):
    monkeypatch.setenv("DYNAMIX_MODEL_DIR", str(MODEL_DIR))
    model = load_model("dynamix-3d-alrnn-v1.0")
    assert torch.equal(model.B, released_model.B)
    assert torch.equal(load_model(MODEL_DIR / "dynamix-3d-alrnn-v1.0.safetensors").B, released_model.B)


def test_unknown_name_lists_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNAMIX_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointNotFoundError) as info:
        load_model("dynamix-9d-nonexistent", cache_dir=tmp_path / "hub")
    text = str(info.value)
    assert str(tmp_path) in text and "DurstewitzLab/dynamix" in text and "export DYNAMIX_MODEL_DIR" in text


@pytest.mark.parametrize(
    "config",
    [
        DynaMixConfig(M=10, N=2, Experts=3, P=2),
        DynaMixConfig(M=8, N=3, Experts=2, expert_type="clipped_shallow_plrnn", hidden_dim=6),
        DynaMixConfig(M=8, N=1, Experts=2, P=1, probabilistic_expert=True),
    ],
)
def test_save_and_load_round_trip_for_every_expert_kind(tmp_path, config):
    torch.manual_seed(0)
    model = DynaMix(config)
    weights, cfg = save_model(model, tmp_path, "dynamix-test")
    assert cfg.name == config_filename("dynamix-test") == "config_test.json"
    assert json.loads(cfg.read_text())["architecture"]["expert_type"] == config.expert_type
    loaded = load_model(weights)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    series = np.sin(np.linspace(0, 30, 300))[:, None].repeat(config.N, 1)
    a = DynaMixPipeline(model).forecast(series, 20, seed=3)
    b = DynaMixPipeline(loaded).forecast(series, 20, seed=3)
    assert np.array_equal(a, b) and np.isfinite(a).all()


def test_config_and_tensors_disagree(tmp_path):
    shutil.copy(MODEL_DIR / "dynamix-3d-alrnn-v1.0.safetensors", tmp_path / "dynamix-x.safetensors")
    (tmp_path / "config_x.json").write_text(json.dumps({"architecture": {"M": 30, "N": 6, "Experts": 10, "P": 2}}))
    with pytest.raises(ValueError, match=r"does not match its config.*gating_network"):
        load_model(tmp_path / "dynamix-x.safetensors")


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="expert_type"):
        DynaMixConfig(expert_type="transformer")
    with pytest.raises(ValueError, match="Unknown DynaMix config keys"):
        DynaMixConfig.from_dict({"architecture": {"M": 3, "Q": 1}})
