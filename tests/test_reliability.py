"""Hostile and careless inputs: every case ends in a correct result or a clear error, never a crash,
silent garbage, a hang, a memory blow-up or code execution."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dynamix_forecasting import DivergenceWarning, DynaMix, DynaMixConfig, DynaMixPipeline, load_model, save_model
from dynamix_forecasting.checkpoint import BUNDLED_DIR
from dynamix_forecasting.cli import main as cli_main
from dynamix_forecasting.julia_bson import BSONError, dynamix_state_dict_from_bson, read_bson
from dynamix_forecasting.memory import ForecastTooLargeError
from dynamix_forecasting.metrics import geometrical_misalignment, mase
from dynamix_forecasting.training import Trainer

from .test_training import _settings

WEIGHTS = BUNDLED_DIR / "dynamix-3d-alrnn-v1.0.safetensors"
CONFIG = BUNDLED_DIR / "config_3d-alrnn-v1.0.json"


# --------------------------------------------------------------------------- security: trainer state
@pytest.fixture
def traj_files(tmp_path):
    t = np.arange(400) * 0.1
    path = tmp_path / "traj.npy"
    np.save(path, np.stack([np.sin(t), np.cos(1.3 * t), np.sin(0.7 * t + 1)], axis=1))
    return [str(path)]


class _Planted:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_in_the_output_dir_is_never_executed(tmp_path, traj_files):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"settings": _Planted(str(marker))}, run / "trainer_state.pt")
    with pytest.raises(ValueError, match="not a trainer state"):
        Trainer(_settings(tmp_path, traj_files))
    assert not marker.exists()


def test_an_interrupted_save_keeps_the_previous_state(tmp_path, traj_files, monkeypatch):
    trainer = Trainer(_settings(tmp_path, traj_files))
    trainer.fit(progress=False, stop_after=1)
    before = (tmp_path / "run" / "trainer_state.pt").read_bytes()

    def crash(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a fi")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.save()
    monkeypatch.undo()
    assert (tmp_path / "run" / "trainer_state.pt").read_bytes() == before
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    assert Trainer(_settings(tmp_path, traj_files)).epoch == 1  # still resumable


# --------------------------------------------------------------------------- security: Julia BSON
def _element(kind: int, name: str, payload: bytes) -> bytes:
    return bytes([kind]) + name.encode() + b"\x00" + payload


def _doc(elements: list[bytes]) -> bytes:
    body = b"".join(elements) + b"\x00"
    return struct.pack("<i", len(body) + 4) + body


def _value(name: str, value) -> bytes:
    if isinstance(value, dict):
        return _element(0x03, name, _doc([_value(k, v) for k, v in value.items()]))
    if isinstance(value, list):
        return _element(0x04, name, _doc([_value(str(i), v) for i, v in enumerate(value)]))
    if isinstance(value, bytes):
        return _element(0x05, name, struct.pack("<i", len(value)) + b"\x00" + value)
    if isinstance(value, str):
        return _element(0x02, name, struct.pack("<i", len(value) + 1) + value.encode() + b"\x00")
    if isinstance(value, int):
        return _element(0x12, name, struct.pack("<q", value))
    raise TypeError(value)


def _bson(tmp_path: Path, document: dict, name: str = "model.bson") -> Path:
    path = tmp_path / name
    path.write_bytes(_doc([_value(k, v) for k, v in document.items()]))
    return path


def _array(values: np.ndarray) -> dict:
    dtype = {"datatype": {"tag": "datatype", "name": ["Core", "Float32"]}}["datatype"]
    return {"tag": "array", "type": dtype, "size": list(values.shape[::-1]), "data": values.astype("<f4").tobytes()}


def _struct(name: str, fields: list) -> dict:
    return {"tag": "struct", "type": {"tag": "datatype", "name": ["Main", name]}, "data": fields}


def _assert_rejected_fast(path: Path, match: str | None = None) -> None:
    start = time.perf_counter()
    with pytest.raises(BSONError, match=match):
        dynamix_state_dict_from_bson(path)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ValueError):  # and load_model says the same, as a ValueError
        load_model(path)


def test_bson_negative_string_length(tmp_path):
    path = tmp_path / "neg.bson"
    path.write_bytes(struct.pack("<i", 11) + b"\x02a\x00" + struct.pack("<i", -5))
    assert path.stat().st_size == 11
    _assert_rejected_fast(path, "negative|runs past|corrupt|truncated")


def test_bson_overrunning_binary_length(tmp_path):
    path = _bson(tmp_path, {"x": b"abcd"})
    raw = bytearray(path.read_bytes())
    raw[7:11] = struct.pack("<i", 10**6)  # the binary's length field
    path.write_bytes(bytes(raw))
    _assert_rejected_fast(path, "runs past")


def test_bson_doubling_back_references_take_linear_time(tmp_path):
    refs = [{"tag": "array", "type": "x", "size": [0], "data": []}]
    for i in range(1, 40):  # 2**40 paths through the graph: linear only with a visited set
        refs.append([{"tag": "backref", "ref": i}, {"tag": "backref", "ref": i}])
    path = _bson(tmp_path, {"_backrefs": refs, "root": {"tag": "backref", "ref": 40}})
    assert path.stat().st_size < 20_000
    _assert_rejected_fast(path, "no Julia DynaMix model")


def test_bson_deep_nesting_and_self_reference(tmp_path):
    deep = _doc([])
    for _ in range(5000):
        deep = _doc([_element(0x03, "a", deep)])
    (tmp_path / "deep.bson").write_bytes(deep)
    _assert_rejected_fast(tmp_path / "deep.bson", "nested deeper")
    path = _bson(tmp_path, {"_backrefs": [[{"tag": "backref", "ref": 1}]], "root": {"tag": "backref", "ref": 1}})
    _assert_rejected_fast(path, "refers to itself")


def tiny_julia_model(folder: Path, stated_experts: int = 2, name: str = "model.bson") -> Path:
    """A Julia-style DynaMix checkpoint (M=6, N=3, two experts) that states ``stated_experts`` experts."""
    rng = np.random.default_rng(0)
    m, n = 6, 3
    gating = _struct(
        "GatingNetwork",
        [
            _struct("Conv", [0, _array(rng.standard_normal((n, n, 2))), _array(rng.standard_normal(n))]),
            _array(np.array([0.1])),
            _array(rng.standard_normal((n, m))),
            _array(rng.standard_normal((2, n + m))),
            _array(rng.standard_normal((2, 2))),
            _array(np.array([0.1])),
            _array(np.full(n, 0.05)),
        ],
    )
    lists = [[_array(rng.standard_normal(shape)) for _ in range(2)] for shape in [(m,), (m, m), (m,)]]
    return _bson(folder, {"model": _struct("DynaMix", [*lists, gating, n, stated_experts, 1])}, name)


@pytest.mark.parametrize("count", [10**5, 10**9])
def test_bson_expert_count_is_checked_against_the_arrays(tmp_path, count):
    _assert_rejected_fast(tiny_julia_model(tmp_path, count), f"states {count} experts but stores 2")
    state, arch = dynamix_state_dict_from_bson(tiny_julia_model(tmp_path, 2, "ok.bson"))  # a true count loads
    assert arch["Experts"] == 2 and state["experts.1.W"].shape == (6, 6)


def test_bson_endless_file_is_capped(tmp_path):
    link = tmp_path / "zero.bson"
    link.symlink_to("/dev/zero")
    start = time.perf_counter()
    with pytest.raises(BSONError, match="larger than"):
        read_bson(link)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "garbage", [b"", b"\x05\x00\x00\x00", b"\xff" * 40, b"\x10\x00\x00\x00\x11a\x00" + b"\x00" * 9]
)
def test_bson_garbage_is_one_clear_error(tmp_path, garbage):
    path = tmp_path / "garbage.bson"
    path.write_bytes(garbage)
    _assert_rejected_fast(path)


# --------------------------------------------------------------------------- checkpoints and configs
def _pair(tmp_path: Path, config) -> Path:
    shutil.copy(WEIGHTS, tmp_path / "dynamix-x.safetensors")
    (tmp_path / "config_x.json").write_text(json.dumps(config))
    return tmp_path / "dynamix-x.safetensors"


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ({"M": 4000, "N": 3, "Experts": 10, "P": 2}, "parameters|does not match"),
        ({"M": 300, "N": 3, "Experts": 10, "P": 2}, "does not match its config"),
        ({"M": 30, "N": 3, "Experts": 1000000, "P": 2}, "parameters|does not match"),
        ({"M": 30, "N": 3, "Experts": 1e6, "P": 2}, "positive int"),
        ({"M": 30, "N": 3, "Experts": 10, "P": 0}, "released DynaMix weights"),
        ({"M": 30, "N": 3, "Experts": 10}, r"lacks \['P'\]"),
    ],
)
def test_config_is_checked_before_anything_is_built(tmp_path, arch, match):
    path = _pair(tmp_path, {"architecture": arch})
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        load_model(path)
    assert time.perf_counter() - start < 2.0


def test_config_that_is_a_list_or_not_json(tmp_path):
    path = _pair(tmp_path, [1, 2])
    with pytest.raises(ValueError, match="JSON object"):
        load_model(path)
    (tmp_path / "config_x.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(path)


def test_weights_must_be_finite_floats_with_nonzero_temperatures(tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(WEIGHTS))
    config = json.loads(CONFIG.read_text())
    for name, change, match in [
        ("int", {"experts.0.A": state["experts.0.A"].to(torch.int32)}, "non-float"),
        ("bool", {"B": state["B"] > 0}, "non-float"),
        ("complex", {"B": state["B"].to(torch.complex64)}, "non-float"),
        ("zero-temp", {"gating_network.softmax_temp1": torch.zeros(1)}, "temperature"),
        ("nan", {"experts.3.W": state["experts.3.W"] * float("nan")}, "NaN/inf"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        save_file({**state, **change}, str(folder / "dynamix-y.safetensors"))
        (folder / "config_y.json").write_text(json.dumps(config))
        with pytest.raises(ValueError, match=match):
            load_model(folder / "dynamix-y.safetensors")
    (tmp_path / "dynamix-z.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    (tmp_path / "config_z.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_model(tmp_path / "dynamix-z.safetensors")


def test_empty_name_is_refused_not_the_working_directory(tmp_path, monkeypatch):
    shutil.copy(WEIGHTS, tmp_path / "dynamix-3d-alrnn-v1.0.safetensors")
    shutil.copy(CONFIG, tmp_path / CONFIG.name)
    monkeypatch.chdir(tmp_path)
    for name in ("", "  "):
        with pytest.raises(ValueError, match="empty"):
            DynaMixPipeline.from_pretrained(name)


def test_the_default_model_ships_inside_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv("DYNAMIX_MODEL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    # In a fresh process with no network, no DYNAMIX_MODEL_DIR and no ../shared.
    code = "from dynamix_forecasting import DynaMixPipeline; p = DynaMixPipeline.from_pretrained(); print(p.model.config.P)"
    env = {k: v for k, v in os.environ.items() if k != "DYNAMIX_MODEL_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    for name in ("README.md", "LICENSE-CC-BY-4.0.txt", CONFIG.name, WEIGHTS.name):
        assert (BUNDLED_DIR / name).is_file()
    assert "Hemmer" in (BUNDLED_DIR / "README.md").read_text()


def test_saved_checkpoints_record_their_architecture(tmp_path):
    model = DynaMix(DynaMixConfig(M=8, N=3, Experts=2, P=1))
    weights, config = save_model(model, tmp_path, "dynamix-rec")
    config.write_text(json.dumps({"architecture": {"M": 8, "N": 3, "Experts": 2, "P": 3}}))
    with pytest.raises(ValueError, match="was saved as"):
        load_model(weights)
    with torch.no_grad():
        model.B.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN/inf"):
        save_model(model, tmp_path / "nan", "dynamix-nan")
    assert not (tmp_path / "nan" / "dynamix-nan.safetensors").exists()


# --------------------------------------------------------------------------- forecasting
DIVERGING = ["AtmosphericRegime", "ForcedVanDerPol", "LiuChen", "WangSun"]


def test_numba_kernel_never_raises_and_diverging_rows_leave_the_others_untouched(pipeline, dysts_dir, lorenz):
    contexts = [np.load(dysts_dir / f"{name}.npy")[-2000:] for name in DIVERGING]
    healthy = lorenz[:2000]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipeline.forecast([*contexts, healthy], 3000, seed=0, backend="numba")
    finite = [bool(np.isfinite(out[:, i]).all()) for i in range(len(contexts))]
    assert not all(finite)  # some do diverge with the noise on
    messages = [str(w.message) for w in caught if issubclass(w.category, DivergenceWarning)]
    assert len(messages) == 1
    for i, ok in enumerate(finite):
        if not ok:
            assert f"series {i} " in messages[0]
    assert np.array_equal(out[:, -1], pipeline.forecast(healthy, 3000, seed=0))  # bit for bit, as if alone
    guarded = pipeline.forecast([*contexts, healthy], 3000, seed=0, divergence_guard=10.0)
    assert np.isfinite(guarded).all()


def test_numba_kernel_survives_nan_states():

    model = DynaMix.random({"M": 8, "N": 3, "Experts": 2, "P": 1})
    with torch.no_grad():
        model.experts[0].W.fill_(1e30)  # overflows to inf within a few steps
    with pytest.warns(DivergenceWarning):
        out = DynaMixPipeline(model).forecast(np.random.default_rng(0).standard_normal((50, 3)), 30, seed=0)
    assert not np.isfinite(out).all()


def test_context_beyond_float32_is_refused(tiny_pipeline):
    with pytest.raises(ValueError, match="float32 range"):
        tiny_pipeline.forecast(np.full((50, 3), 1e39) * np.arange(1, 4), 5)


@pytest.mark.parametrize(("scale", "offset"), [(1e-30, 0.0), (1e-7, 0.0), (1.0, 1e8), (1e12, -3e14), (1e-200, 0.0)])
def test_forecasts_are_invariant_to_scale_and_offset(pipeline, lorenz, scale, offset):
    x = lorenz[:1000]
    ref = pipeline.forecast(x, 30, noise=False)
    moved = pipeline.forecast(x * scale + offset, 30, noise=False)
    back = (moved - offset) / scale
    assert np.abs(back - ref).max() < 1e-3 * x.std()
    assert np.ptp(moved[:, 0]) > 0.1 * np.ptp(ref[:, 0]) * scale  # not a flat line


def test_nonstationary_mode_is_bounded_and_warns(pipeline):
    from sktime.datasets import load_shampoo_sales

    y = load_shampoo_sales().to_numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipeline.forecast(y, 36, fit_nonstationary=True, seed=0)
    span = y.max() - y.min()
    assert np.isfinite(out).all() and out.max() < y.max() + 11 * span
    if out.max() > y.max() + 9 * span:  # only a forecast that reached the bound may get there, with a warning
        assert any(issubclass(w.category, DivergenceWarning) for w in caught)
    growth = np.exp(np.linspace(0, 20, 300))
    with pytest.warns(DivergenceWarning, match="inverse Box-Cox"):
        out = pipeline.forecast(growth, 36, fit_nonstationary=True, seed=0)
    assert np.isfinite(out).all() and out.max() <= growth.max() * 11.01


def test_a_series_gets_the_same_bits_alone_or_in_a_batch(pipeline, lorenz):
    a, b = lorenz[:1000], lorenz[5000:6000] * 3 + 1
    alone = pipeline.forecast(a, 1000, seed=3)
    assert np.array_equal(pipeline.forecast(np.stack([b, a], 1), 1000, seed=3)[:, 1], alone)
    assert np.array_equal(pipeline.forecast([b, a[:700], a], 1000, seed=3)[:, 2], alone)


def test_pandas_time_order_is_checked(tiny_pipeline):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((60, 3))
    index = pd.date_range("2024-01-01", periods=60, freq="D")
    frame = pd.DataFrame(values, index=index)
    with pytest.raises(ValueError, match="not sorted"):
        tiny_pipeline.forecast(frame.iloc[rng.permutation(60)], 5)
    with pytest.raises(ValueError, match="not sorted"):
        tiny_pipeline.forecast(frame.iloc[::-1], 5)
    with pytest.raises(ValueError, match="duplicated"):
        tiny_pipeline.forecast(pd.DataFrame(values, index=index[:30].append(index[:30]).sort_values()), 5)
    mixed = pd.Index([pd.Timestamp("2024-01-01", tz="UTC")] * 30 + [pd.Timestamp("2024-02-01", tz="Asia/Tokyo")] * 30)
    with pytest.raises(ValueError, match="time zones"):
        tiny_pipeline.forecast(pd.DataFrame(values, index=mixed), 5)
    gappy = index.delete([10, 11, 12])
    with pytest.warns(UserWarning, match="unevenly spaced"):
        tiny_pipeline.forecast(pd.DataFrame(values[:57], index=gappy), 5)
    assert tiny_pipeline.forecast(frame, 5, seed=0).shape == (5, 3)


def test_cli_sorts_a_newest_first_csv_and_warns_on_gaps(tmp_path, capsys):
    times = pd.date_range("2024-01-01", periods=80, freq="h")
    values = np.sin(np.arange(80) / 4.0)
    src = tmp_path / "newest_first.csv"
    pd.DataFrame({"time": times, "y": values}).iloc[::-1].to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert cli_main(["forecast", str(src), "--horizon", "5", "--seed", "0", "--output", str(out)]) == 0
    result = pd.read_csv(out, index_col=0, parse_dates=True)
    assert result.index[0] == times[-1] + pd.Timedelta("1h")  # forecasts the future, not the past
    assert "sorted the rows" in capsys.readouterr().err
    gappy = tmp_path / "gappy.csv"
    pd.DataFrame({"time": times.delete([5, 6, 40]), "y": values[:77]}).to_csv(gappy, index=False)
    assert cli_main(["forecast", str(gappy), "--horizon", "5", "--output", str(out)]) == 0
    assert "unevenly spaced" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs", [{"horizon": 10**9}, {"horizon": 1, "num_samples": 10**7}, {"horizon": 10**6, "num_samples": 10**4}]
)
def test_forecasts_that_cannot_fit_in_memory_are_refused_up_front(tiny_pipeline, kwargs):
    start = time.perf_counter()
    with pytest.raises(ForecastTooLargeError, match=r"needs about .* GB .* available"):
        tiny_pipeline.forecast(np.random.default_rng(0).standard_normal((60, 3)), **kwargs)
    assert time.perf_counter() - start < 2.0


def test_a_fork_pool_works_after_a_forecast(tmp_path):
    script = textwrap.dedent(
        """
        import multiprocessing as mp
        import numpy as np
        from dynamix_forecasting import DynaMix, DynaMixPipeline

        pipe = DynaMixPipeline(DynaMix.random({"M": 8, "N": 3, "Experts": 2, "P": 1}))
        ctx = np.random.default_rng(0).standard_normal((100, 3))
        first = pipe.forecast([ctx, ctx[:80]], 50, seed=1)  # the parallel kernel has run in this process

        def work(seed):
            return pipe.forecast(ctx, 50, seed=seed)

        with mp.get_context("fork").Pool(2) as pool:
            out = pool.map(work, [1, 2])
        assert np.array_equal(out[0], first[:, 0])
        from joblib import Parallel, delayed
        again = Parallel(n_jobs=2, backend="multiprocessing")(delayed(work)(s) for s in [1, 2])
        assert np.array_equal(again[1], out[1])
        print("ok")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("NUMBA_THREADING_LAYER", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    assert "fork()" not in result.stderr


# --------------------------------------------------------------------------- options with clear messages
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1}, ValueError, "seed must be a non-negative int"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"divergence_guard": "abc"}, TypeError, "divergence_guard"),
        ({"divergence_guard": float("nan")}, ValueError, "divergence_guard"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"noise": "no"}, TypeError, "noise must be True or False"),
        ({"num_samples": True}, TypeError, "num_samples"),
        ({"context": np.ones((60, 3)) * (1 + 1j)}, TypeError, "complex"),
    ],
)
def test_option_errors_name_the_option(tiny_pipeline, kwargs, error, match):
    call = {"context": np.random.default_rng(0).standard_normal((60, 3)), "horizon": 5, **kwargs}
    with pytest.raises(error, match=match):
        tiny_pipeline.forecast(**call)


def test_numpy_integers_are_accepted_everywhere(tiny_pipeline):
    ctx = np.random.default_rng(0).standard_normal((60, 3))
    out = tiny_pipeline.forecast(ctx, np.int64(5), num_samples=np.int32(2), batch_size=np.int64(2), seed=np.uint8(3))
    assert out.shape == (2, 5, 3) and np.array_equal(out, tiny_pipeline.forecast(ctx, 5, num_samples=2, seed=3))


def test_sktime_far_horizon_names_fh():
    from dynamix_forecasting.sktime import DynaMixForecaster

    y = pd.Series(np.sin(np.arange(60) / 3.0), index=pd.date_range("2024-01-01", periods=60, freq="D"))
    forecaster = DynaMixForecaster(mode="dynamics", model={"M": 8, "N": 3, "Experts": 2, "P": 1}, random_state=0).fit(y)
    with pytest.raises(ValueError, match="fh reaches"):
        forecaster.predict(fh=[10**9])


def test_metric_options_are_checked():
    x = np.random.default_rng(0).standard_normal((200, 3))
    for kwargs, match in [
        ({"n_bins": 0}, "n_bins"),
        ({"n_bins": 10**4}, "cells"),
        ({"method": "gmm", "n_mc": 0}, "n_mc"),
    ]:
        with pytest.raises(ValueError, match=match):
            geometrical_misalignment(x, x, **kwargs)
    with pytest.raises(ValueError, match="steps"):
        mase(x, x, steps=1.5)


# --------------------------------------------------------------------------- training settings
@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"input_noise": float("nan")}, "input_noise"),
        ({"lr_start": float("inf")}, "lr_start"),
        ({"grad_clip": -5.0}, "grad_clip"),
        ({"eval_every": -1}, "eval_every"),
        ({"threads": -1}, "threads"),
        ({"context_length": 1}, "context_length"),
        ({"batch_size": True}, "batch_size"),
        ({"gating_noise_weight": -0.1}, "gating_noise_weight"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_training_settings_are_validated(tmp_path, traj_files, override, match):
    with pytest.raises(ValueError, match=match):
        _settings(tmp_path, traj_files, **override)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where torch sees no CUDA device")
def test_cuda_setting_without_cuda(tmp_path, traj_files):
    with pytest.raises(ValueError, match="no CUDA device"):
        _settings(tmp_path, traj_files, device="cuda")


def test_a_diverging_run_stops_and_saves_nothing_non_finite(tmp_path, traj_files):
    trainer = Trainer(_settings(tmp_path, traj_files, epochs=3, lr_start=1e30, lr_end=1e29, grad_clip=1e30))
    with pytest.raises(FloatingPointError, match="diverged"):
        trainer.fit(progress=False)
    weights = tmp_path / "run" / "checkpoint" / "dynamix-3d-tiny.safetensors"
    if weights.exists():  # an earlier epoch's checkpoint may exist; it must be finite
        assert all(torch.isfinite(p).all() for p in load_model(weights).parameters())


def test_cli_nan_setting_exits_2(tmp_path, traj_files, capsys):
    code = cli_main(["train", "--override", "input_noise=NaN", f"output_dir={tmp_path / 'r'}"])
    assert code == 2 and "input_noise" in capsys.readouterr().err


# --------------------------------------------------------------------------- command line
def test_cli_failures_print_one_line_and_exit_2(tmp_path, capsys):
    src = tmp_path / "in.csv"
    pd.DataFrame({"y": np.sin(np.arange(100) / 5.0)}).to_csv(src, index=False)
    corrupt = tmp_path / "dynamix-bad.safetensors"
    corrupt.write_bytes(b"garbage")
    (tmp_path / "config_bad.json").write_text("[1, 2]")
    listed = tmp_path / "cfg"
    listed.mkdir()
    shutil.copy(WEIGHTS, listed / "dynamix-l.safetensors")
    (listed / "config_l.json").write_text("[1, 2]")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (["forecast", str(src), "--horizon", "5", "--output", str(tmp_path / "missing" / "o.csv")], "does not exist"),
        (["forecast", str(src), "--horizon", "100000000000"], "memory"),
        (["forecast", str(src), "--horizon", "5", "--model", str(corrupt)], "JSON object|not a valid"),
        (["forecast", str(src), "--horizon", "5", "--model", str(listed / "dynamix-l.safetensors")], "JSON object"),
        (["forecast", str(tmp_path / "nope.csv"), "--horizon", "5"], "cannot read"),
        (["forecast", str(src), "--horizon", "5", "--seed", "-1"], "seed"),
        (["demo", "--output-dir", str(a_file)], "is a file"),
        (["demo", "--output-dir", str(tmp_path / "d"), "--samples", "0"], "--samples"),
    ]
    for argv, match in cases:
        start = time.perf_counter()
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err and __import__("re").search(match, err), (argv, err)
        assert time.perf_counter() - start < 30


def test_cli_demo_with_one_sample(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--output-dir", str(out), "--samples", "1", "--context", "500", "--horizon", "300"]
    assert cli_main(args) == 0
    frame = pd.read_csv(out / "lorenz63_forecast.csv")
    assert frame.shape[0] == 300 and np.isfinite(frame[["x", "y", "z"]].to_numpy()).all()
    assert (out / "lorenz63_long_attractor.png").stat().st_size > 1000


@pytest.mark.slow
def test_first_compilation_is_announced_once(tmp_path):
    code = (
        "import numpy as np\n"
        "from dynamix_forecasting import DynaMix, DynaMixPipeline\n"
        "p = DynaMixPipeline(DynaMix.random({'M': 8, 'N': 3, 'Experts': 2, 'P': 1}))\n"
        "p.forecast(np.ones((50, 3)) * np.arange(50)[:, None], 5, seed=0)\n"
        "p.forecast(np.ones((50, 3)) * np.arange(50)[:, None], 5, seed=0)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300) for _ in "ab"
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stderr.count("compiling the CPU rollout kernel") == 1  # a fresh cache: compiled, said once
    assert "compiling" not in runs[1].stderr  # loaded from the cache: silent
