"""Unit tests of the pieces the end-to-end tests only reach through forecasts: preprocessing, inputs, BSON."""

from __future__ import annotations

import dataclasses
import struct
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from dynamix_forecasting.inputs import as_series_batch
from dynamix_forecasting.julia_bson import BSONError, JuliaStruct, read_bson, resolve
from dynamix_forecasting.options import check_bool, check_guard, check_seed, positive_int
from dynamix_forecasting.preprocessing import (
    NonstationaryTransform,
    autocorrelation,
    autocorrelations,
    complete_initial_condition,
    delay_tau,
    embed,
    min_context_length,
    positional_tau,
    positional_taus,
    standardization,
    standardize,
)

from .test_reliability import _bson, _doc, _element, _value


# --------------------------------------------------------------------------- preprocessing
def _direct_acf(x: np.ndarray, nlags: int) -> np.ndarray:
    x = x - x.mean()
    return np.array([np.dot(x[: len(x) - k], x[k:]) for k in range(nlags + 1)]) / np.dot(x, x)


def test_autocorrelation_matches_the_definition_and_the_batched_version():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((4, 300)).cumsum(1)
    for row in series:
        np.testing.assert_allclose(autocorrelation(row, 50), _direct_acf(row, 50), atol=1e-12)
    np.testing.assert_allclose(autocorrelations(series, 50), [autocorrelation(r, 50) for r in series], atol=1e-12)
    flat = autocorrelation(np.ones(20), 5)
    assert flat[0] == 1 and not flat[1:].any()  # a constant series: defined as zero beyond lag 0


@pytest.mark.parametrize("period", [12, 25, 40])
def test_positional_period_finds_the_season(period):
    t = np.arange(600)
    data = np.stack([np.sin(2 * np.pi * t / period), np.cos(2 * np.pi * t / period)], axis=1)
    assert positional_tau(data) % period == 0  # the highest peak beyond T // 10 is a multiple of the period
    many = [data[:, :1], data[:, 1:], data * 3.0]
    assert positional_taus(many) == [positional_tau(d) for d in many]


def test_delay_period_is_the_first_drop_below_one_over_e():
    t = np.arange(400)
    data = np.sin(2 * np.pi * t / 40)[:, None]
    acf = _direct_acf(data[:, 0], 200)
    assert delay_tau(data) == int(np.nonzero(acf[1:] < 1 / np.e)[0][0]) + 1


def test_embeddings_lift_to_the_model_dimension():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((100, 1)).astype(np.float32)
    pos = embed(data, 3, "pos_embedding", tau=20)
    t = np.arange(1, 101)
    np.testing.assert_allclose(pos[:, 1], np.sin(2 * np.pi * t / 20), atol=1e-5)  # phases 0 and pi/2
    np.testing.assert_allclose(pos[:, 2], np.cos(2 * np.pi * t / 20), atol=1e-5)
    zero = embed(data, 3, "zero_embedding")
    assert zero.shape == (100, 3) and not zero[:, 1:].any()
    delay = embed(data, 3, "delay_embedding")
    tau = delay_tau(data)
    np.testing.assert_array_equal(delay[:, 1], data[tau : 100 - tau, 0])  # x(t - tau) beside x(t)
    np.testing.assert_array_equal(delay[:, 2], data[: 100 - 2 * tau, 0])
    rand = embed(data, 3, "delay_embedding_random", np.random.default_rng(0))
    assert 100 - 10 <= rand.shape[0] <= 100 - 3
    assert embed(data, 1, "pos_embedding") is data  # nothing to add
    assert min_context_length(1, 3, "delay_embedding_random") == 12 and min_context_length(3, 3, "delay_embedding") == 3


def test_standardization_is_exact_for_any_scale_and_offset():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 2))
    mean, std = standardization(x)
    for scale, offset in [(1e-200, 0.0), (1e-7, 0.0), (1.0, 1e8), (1e12, -3e14)]:
        m, s = standardization(x * scale + offset)
        np.testing.assert_allclose((m - offset) / scale, mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(s / scale, std, rtol=1e-9)
    assert standardization(np.ones((5, 1)))[1][0] == 1.0  # a constant channel: std 1


def test_standardize_keeps_the_published_float32_bits_where_they_are_accurate():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 3)) * 2 + 1
    out, _, _ = standardize(x)
    x32 = torch.as_tensor(x.astype(np.float32))
    published = ((x32 - x32.mean(0)) / x32.std(0).clamp_min(1e-6)).numpy()
    np.testing.assert_array_equal(out, published)
    shifted, mean8, _ = standardize(x + 1e8)  # float32 cannot hold 1e8 + x: exact statistics instead
    np.testing.assert_allclose(shifted, out, atol=1e-5)
    assert abs(mean8[0] - 1e8 - x[:, 0].mean()) < 1e-6


def test_nonstationary_transform_round_trip():
    t = np.arange(1, 201, dtype=float)
    data = np.stack([50 + 0.3 * t + 3 * np.sin(t / 5), np.exp(t / 100)], axis=1)
    transform, out = NonstationaryTransform.fit_transform(data)
    # Inverting the transformed context at its own time steps gives the data back.
    back, saturated = dataclasses.replace(transform, t_len=0).inverse(out.astype(np.float64))
    assert not saturated.any()
    np.testing.assert_allclose(back, data, rtol=1e-4)
    far, saturated = transform.inverse(np.full((1, 5, 2), 1e6))
    assert saturated.all() and np.isfinite(far).all()  # a runaway forecast is bounded, and says so


def test_partial_initial_condition_takes_the_nearest_frame():
    embedded = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])
    np.testing.assert_array_equal(complete_initial_condition(np.array([0.9]), embedded), [0.9, 20.0])


# --------------------------------------------------------------------------- inputs
def test_series_batch_layouts():
    x = np.arange(30.0).reshape(10, 3)
    assert as_series_batch(x[:, 0]).layout == "1d"
    two = as_series_batch(x)
    assert two.layout == "2d" and two.series[0].shape == (10, 3) and two.n_channels == 3
    three = as_series_batch(np.stack([x, x + 1], axis=1))
    assert three.layout == "3d" and len(three.series) == 2 and np.array_equal(three.series[1], x + 1)
    listed = as_series_batch([x[:5], torch.tensor(x)])
    assert listed.layout == "list" and [s.shape[0] for s in listed.series] == [5, 10] and not listed.as_torch
    tensor = as_series_batch(torch.tensor(x, dtype=torch.float32))
    assert tensor.as_torch and tensor.device == torch.device("cpu") and tensor.series[0].dtype == np.float64
    frame = as_series_batch(pd.DataFrame(x, index=pd.date_range("2024", periods=10, freq="D")))
    assert np.array_equal(frame.series[0], x)
    for bad, error in [
        ([], ValueError),
        (np.zeros((0, 2)), ValueError),
        ("text", TypeError),
        (np.zeros((2,) * 4), ValueError),
    ]:
        with pytest.raises(error):
            as_series_batch(bad)


def test_option_checks():
    assert positive_int("n", np.int16(3)) == 3 and check_seed(np.uint64(7)) == 7 and check_seed(None) is None
    assert check_bool("flag", np.bool_(True)) is True and check_guard(np.float32(2.5)) == 2.5
    for call, error in [
        (lambda: positive_int("n", 0), ValueError),
        (lambda: positive_int("n", True), TypeError),
        (lambda: check_seed(-2), ValueError),
        (lambda: check_bool("flag", 1), TypeError),
        (lambda: check_guard(float("inf")), ValueError),
        (lambda: check_guard("1"), TypeError),
    ]:
        with pytest.raises(error):
            call()


def test_uneven_time_steps_warn_and_regular_ones_do_not():
    values = np.zeros((10, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_series_batch(pd.DataFrame(values, index=pd.date_range("2024", periods=10, freq="MS")))  # months differ
        as_series_batch(pd.Series(values[:, 0], index=pd.period_range("2024-01", periods=10, freq="M")))
    with pytest.warns(UserWarning, match="unevenly"):
        as_series_batch(pd.DataFrame(values, index=[0, 1, 2, 3, 5, 6, 7, 8, 9, 10]))


# --------------------------------------------------------------------------- Julia BSON
def test_read_bson_decodes_every_element_type(tmp_path):
    body = [
        _element(0x01, "d", struct.pack("<d", 2.5)),
        _value("s", "text"),
        _value("doc", {"a": 1}),
        _value("arr", [1, 2]),
        _value("bin", b"\x01\x02"),
        _element(0x08, "t", b"\x01"),
        _element(0x0A, "n", b""),
        _element(0x10, "i32", struct.pack("<i", -3)),
        _element(0x11, "u64", struct.pack("<Q", 2**63)),
    ]
    path = tmp_path / "all.bson"
    path.write_bytes(_doc(body))
    assert read_bson(path) == {
        "d": 2.5, "s": "text", "doc": {"a": 1}, "arr": [1, 2], "bin": b"\x01\x02", "t": True, "n": None,
        "i32": -3, "u64": 2**63,
    }  # fmt: skip
    path.write_bytes(_doc([_element(0x07, "oid", b"\x00" * 12)]))
    with pytest.raises(BSONError, match="unsupported BSON element type 0x07"):
        read_bson(path)


def test_resolve_builds_arrays_structs_and_shared_back_references(tmp_path):
    float32 = {"tag": "datatype", "name": ["Core", "Float32"]}
    matrix = {"tag": "array", "type": float32, "size": [2, 3], "data": np.arange(6, dtype="<f4").tobytes()}
    doc = {
        "_backrefs": [matrix],
        "model": {"tag": "struct", "type": {"tag": "datatype", "name": ["Main", "Thing"]}, "data": [
            {"tag": "backref", "ref": 1}, {"tag": "backref", "ref": 1}, {"tag": "symbol", "name": "relu"},
        ]},
    }  # fmt: skip
    tree = resolve(read_bson(_bson(tmp_path, doc)))
    thing = tree["model"]
    assert isinstance(thing, JuliaStruct) and thing.type_name == "Thing" and thing.fields[2] == "relu"
    np.testing.assert_array_equal(thing.fields[0], np.arange(6, dtype=np.float32).reshape(2, 3, order="F"))
    assert thing.fields[0] is thing.fields[1]  # one back-reference, one object
    matrix["size"] = [4, 3]
    with pytest.raises(BSONError, match="holds 24 bytes"):
        resolve(read_bson(_bson(tmp_path, doc, "bad.bson")))


def test_univariate_panels_are_standardized_in_one_go_with_the_single_series_bits():
    from dynamix_forecasting.preprocessing import standardize_univariate

    rng = np.random.default_rng(1)
    for t_len in (3, 17, 301, 2048):
        batch = rng.standard_normal((40, t_len)) * 10 ** rng.uniform(-30, 30, (40, 1))
        batch += rng.choice([0.0, 1.0, 1e8, -3e14], (40, 1))
        batch[0], batch[1] = 7.0, np.round(batch[1])  # a constant row, an integer-valued row
        out, mean, std = standardize_univariate(batch)
        for i, row in enumerate(batch):
            alone, m, s = standardize(row[:, None])
            assert np.array_equal(alone[:, 0], out[i]) and m[0] == mean[i] and s[0] == std[i], (t_len, i)


def _scipy_period(acf: np.ndarray, min_lag: int) -> int:
    """The positional period by scipy's find_peaks (the definition acf_periods compiles)."""
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(acf)
    valid = peaks[peaks > min_lag]
    if valid.size:
        return int(valid[np.argmax(acf[valid])])
    start = min(min_lag + 1, acf.shape[0] - 1)
    return start + int(np.argmax(acf[start:]))


def test_acf_periods_agree_with_scipy_find_peaks_plateaus_included():
    from dynamix_forecasting.acf_peaks import acf_periods

    rng = np.random.default_rng(0)
    rows = [rng.standard_normal(40) for _ in range(200)]
    rows += [np.round(rng.standard_normal(40), 0) for _ in range(200)]  # many ties: flat tops, flat ends
    rows += [np.cos(np.arange(60) * 2 * np.pi / p) for p in (3, 7, 12, 24)]
    rows += [np.linspace(1, 0, 30), np.zeros(30), np.array([1.0, 0.5]), np.array([1.0, 2.0, 2.0, 2.0])]
    for row in rows:
        for min_lag in (0, 1, len(row) // 10, len(row) - 2):
            expected = _scipy_period(row, min_lag)
            assert acf_periods(row[None], np.array([min_lag]))[0] == expected, (row, min_lag)


def test_positional_taus_in_a_batch_equal_one_by_one():
    from dynamix_forecasting.preprocessing import positional_tau, positional_taus

    rng = np.random.default_rng(1)
    t = np.arange(200)
    datas = [np.stack([np.sin(2 * np.pi * t / p), rng.standard_normal(200)], 1) for p in (5, 11, 24, 40)]
    datas += [np.stack([np.full(150, 3.0), np.sin(t[:150] / 4)], 1), np.full((150, 2), 1.0)]
    assert positional_taus(datas) == [positional_tau(d) for d in datas]
    sines = positional_taus([d[:, :1] for d in datas[:4]])  # a multiple of each sine's period beyond T // 10
    assert [tau % p for tau, p in zip(sines, (5, 11, 24, 40), strict=True)] == [0, 0, 0, 0] and min(sines) > 20
