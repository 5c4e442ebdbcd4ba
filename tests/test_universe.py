"""The generator of new chaotic flows (training/flows.py, training/universe.py): reproducible draws, the
tests of chaos on systems whose answer is known, the distance rule against held-out systems, a resumable
corpus, and training on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynamix_forecasting.training import Trainer, TrainingSettings, flows, universe
from dynamix_forecasting.training.data import TRAINING_SYSTEMS

from .conftest import DYSTS, _require


def _parameters_only() -> dict:
    """What draw_spec reads from the skeletons (no integration needed)."""
    import dysts.flows as dysts_flows

    return {n: {"params": dict(getattr(dysts_flows, n)().parameters)} for n in TRAINING_SYSTEMS}


def test_draws_are_reproducible_and_cover_every_family():
    base = _parameters_only()
    specs = [flows.draw_spec(0, i, 3, base) for i in range(200)]
    assert specs == [flows.draw_spec(0, i, 3, base) for i in range(200)]
    assert specs != [flows.draw_spec(1, i, 3, base) for i in range(200)]
    counts = {f: sum(s["family"] == f for s in specs) for f in flows.FAMILIES[3]}
    for family, share in flows.FAMILIES[3].items():
        assert abs(counts[family] / 200 - share) < 0.1, counts
    # parameter-free systems (SprottE, SprottJ, SprottN) are never "mutated": that would only move the start
    assert all(base[s["systems"][0]]["params"] for s in specs if s["family"] == "mutation")
    coupled = [s for s in specs if s["family"] in ("skew", "diffusive")]
    assert all(s["systems"][0] != s["systems"][1] for s in coupled)
    assert all(sorted(np.abs(np.asarray(s["permutation"])).sum(0)) == [1, 1, 1] for s in coupled)
    six = [flows.draw_spec(0, i, 6, base) for i in range(50)]
    assert {s["family"] for s in six} <= set(flows.FAMILIES[6])
    with pytest.raises(ValueError, match="dim must be one of"):
        flows.draw_spec(0, 0, 4, base)


def _skeleton(name: str) -> dict:
    return {name: flows._skeleton_from_dysts(name)}


@pytest.mark.slow
def test_chaos_tests_on_systems_with_known_answers():
    # Rossler (a = b = 0.2, c = 5.7): largest Lyapunov exponent 0.0714 per time unit (Wolf et al. 1985), i.e.
    # 0.42 per dysts period (5.909): the generator's time unit for a training system
    base = _skeleton("Rossler")
    chaotic = {"family": "mutation", "dim": 3, "systems": ["Rossler"], "params": [base["Rossler"]["params"]]}
    trajectory, facts = universe.make_candidate(chaotic, base, 6_000)
    assert trajectory.shape == (6_000, 3) and np.isfinite(trajectory).all()
    assert facts["lyapunov_per_period"] == pytest.approx(0.0714 * 5.9086, rel=0.2)
    assert facts["spectral_entropy"] > universe.MIN_SPECTRAL_ENTROPY
    # c = 4: a period-2 limit cycle of the same family
    cycle = {**chaotic, "params": [{"a": 0.2, "b": 0.2, "c": 4.0}]}
    with pytest.raises(universe._Rejected, match="not chaotic"):
        universe.make_candidate(cycle, base, 6_000)
    # linear damping only: every trajectory falls onto the origin
    sink = {"family": "quadratic", "dim": 3, "terms": [[i, i, -1, -1.0] for i in range(3)], "ic": [1.0, -1.0, 0.5]}
    with pytest.raises(universe._Rejected, match="fixed point"):
        universe.make_candidate(sink, {}, 6_000)
    # a 6-channel skew product (SprottJ driving RikitakeDynamo), observed in all six channels
    base6 = {**_skeleton("SprottJ"), **_skeleton("RikitakeDynamo")}
    six = {
        "family": "skew", "dim": 6, "systems": ["SprottJ", "RikitakeDynamo"],
        "params": [base6["SprottJ"]["params"], base6["RikitakeDynamo"]["params"]],
        "coupling": 0.5, "permutation": [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
    }  # fmt: skip
    trajectory, facts = universe.make_candidate(six, base6, 6_000)
    assert trajectory.shape == (6_000, 6) and facts["lyapunov_per_period"] > universe.MIN_LYAPUNOV
    # y' = y^2 leaves every bound in finite time
    blowup = {"family": "quadratic", "dim": 3, "terms": [[i, i, i, 1.0] for i in range(3)], "ic": [1.0, 1.0, 1.0]}
    with pytest.raises(universe._Rejected, match="unbounded"):
        universe.make_candidate(blowup, {}, 6_000)


@pytest.fixture(scope="module")
def held_out() -> dict[str, np.ndarray]:
    _require(DYSTS / "index.json")
    index = json.loads((DYSTS / "index.json").read_text())
    names = sorted(n for n, v in index.items() if "error" not in v and not v.get("in_dynamix_training_set"))[:24]
    if "Lorenz" not in names:
        names.append("Lorenz")
    return {n: np.load(DYSTS / f"{n}.npy").astype(np.float64) for n in names}


def test_distance_rule_drops_a_copy_of_a_held_out_system_and_keeps_other_systems(held_out):
    reference = universe.held_out_reference(held_out)
    scales = np.asarray(reference["scales"])
    assert 0 < reference["threshold"] < 3.0
    # a copy of Lorenz, also with its channels reordered and one flipped (as a coupling's permutation may), is
    # dropped; so are three quarters of the held-out systems' own second halves (the threshold's definition)
    lorenz = held_out["Lorenz"]
    for copy in (lorenz, lorenz[:, [2, 0, 1]] * np.array([1.0, -1.0, 1.0]), 3.0 * lorenz + 7.0):
        name, gap = universe.nearest_held_out(universe.invariant_features(copy), reference)
        assert name == "Lorenz" and gap < 0.1 * reference["threshold"], (name, gap)
    inside = np.mean([d < reference["threshold"] for d in reference["self_distance"].values()])
    assert inside == pytest.approx(universe.THRESHOLD_QUANTILE, abs=0.05)
    # distinct held-out systems lie beyond it (the rule does not drop whole families of flows)
    features = reference["features"]
    pairs = [universe.distance(features[a], features[b], scales) for a in features for b in features if a < b]
    assert np.quantile(pairs, 0.05) > reference["threshold"]
    # correlation dimension: about 2.05 for Lorenz, 0 for a point
    assert universe.correlation_dimension(held_out["Lorenz"]) == pytest.approx(2.05, abs=0.25)
    assert universe.correlation_dimension(np.ones((2_000, 3))) == 0.0


@pytest.mark.slow
def test_corpus_is_resumable_reproducible_and_trains(tmp_path, held_out):
    first, second = tmp_path / "a", tmp_path / "b"
    universe.generate(first, 4, held_out, seed=3, n_points=6_000, progress=False)
    grown = universe.generate(first, 6, held_out, seed=3, n_points=6_000, progress=False)  # resumes: 2 more
    fresh = universe.generate(second, 6, held_out, seed=3, n_points=6_000, progress=False)
    assert grown["candidates"] == fresh["candidates"]
    assert sorted(grown["candidates"]) == [f"d3_s3_{i:05d}" for i in range(6)]
    for key, entry in grown["candidates"].items():
        assert ("rejected" in entry) != (first / f"{key}.npy").exists()
        if "rejected" not in entry:
            assert entry["lyapunov_per_period"] > universe.MIN_LYAPUNOV
            assert entry["distance"] >= grown["reference"]["threshold"]
            np.testing.assert_array_equal(np.load(first / f"{key}.npy"), np.load(second / f"{key}.npy"))
    with pytest.raises(ValueError, match="holds a corpus with settings"):
        universe.generate(first, 6, held_out, seed=4, n_points=6_000, progress=False)
    kept = universe.kept(first)
    if not kept:
        pytest.fail(f"no candidate of six kept: {[v['rejected'] for v in grown['candidates'].values()]}")
    with pytest.raises(ValueError, match="generate more candidates"):
        universe.kept(first, len(kept) + 1)
    settings = TrainingSettings(
        init="dynamix-3d-alrnn-v1.0", universe_dir=str(first), epochs=1, batches_per_epoch=2, windows_per_system=4,
        lr_start=1e-5, lr_end=1e-5, eval_every=0, output_dir=str(tmp_path / "run"), threads=1,
    )  # fmt: skip
    trainer = Trainer(settings)
    rows = trainer.fit(progress=False)
    assert np.isfinite(rows[-1]["loss"]) and rows[-1]["loss"] < 1.0
    with pytest.raises(ValueError, match="generate the corpus first"):
        TrainingSettings(universe_dir=str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="set universe_dir too"):
        TrainingSettings(universe_systems=3)
