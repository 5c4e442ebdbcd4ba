"""A universe of new chaotic flows: integrate the candidates of :mod:`.flows`, keep those that pass the
declared tests of chaos and lie far from every held-out system, and record everything in a manifest.

The tests (each candidate, in this order; the first that fails is recorded as the reason):

1. **Integrates and stays bounded**: a probe of ``PROBE_TIME`` time units (DOP853, rtol = atol = 1e-8)
   neither stops nor leaves ``|y| < MAX_STATE``.
2. **Not a fixed point**: every observed channel's standard deviation over the probe's last half is at
   least ``MIN_LATE_STD`` times its deviation over the whole probe.
3. **The trajectory**: 50 points per dominant period (the highest peak of the observed channels' mean
   power spectrum in the probe), ``n_points`` after a transient of a tenth of that, DOP853 with
   rtol = atol = 1e-10 as the published corpus; it must be finite and bounded as in 1.
4. **Chaotic**: largest Lyapunov exponent (Benettin's method: two states 1e-8 apart, renormalised every
   period, ``LYAPUNOV_PERIODS`` periods) above ``MIN_LYAPUNOV`` per period: not a limit cycle or a torus.
5. **Broadband**: the normalised spectral entropy of the observed channels (Welch, 512-point segments)
   at least ``MIN_SPECTRAL_ENTROPY``.
6. **Far from the held-out systems**: the distance of :func:`distance` to every held-out dysts system
   at least the declared threshold (:func:`held_out_reference`).

The thresholds were set so that all 30 training systems pass tests 2, 4 and 5 (see ``docs/training.md``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp
from scipy.signal import welch
from tqdm.auto import tqdm

from .flows import draw_spec, skeletons, vector_field

POINTS_PER_PERIOD = 50
PROBE_TIME = 60.0
MAX_STATE = 1e3
MIN_LATE_STD = 0.05
LYAPUNOV_PERIODS = 60
MIN_LYAPUNOV = 0.03
MIN_SPECTRAL_ENTROPY = 0.25
#: Seconds one candidate may take (stiff draws otherwise hang).
TIME_LIMIT = 30
#: Points of the feature window (as the held-out trajectories' first half: 6,000 of 12,000 points).
FEATURE_POINTS = 6_000
#: The distance threshold is this quantile of the held-out systems' half-to-half self-distances.
THRESHOLD_QUANTILE = 0.75


class _Rejected(Exception):
    pass


def _solve(f, y0: np.ndarray, t_end: float, t_eval: np.ndarray | None, rtol: float) -> np.ndarray:
    def escape(t: float, y: np.ndarray) -> float:
        return MAX_STATE - float(np.abs(y).max())

    escape.terminal = True  # type: ignore[attr-defined]
    sol = solve_ivp(f, (0.0, t_end), y0, method="DOP853", rtol=rtol, atol=rtol, t_eval=t_eval, events=escape)
    if sol.status != 0 or not np.isfinite(sol.y).all():
        raise _Rejected("unbounded or integration stopped")
    return sol.y.T


def dominant_period(x: np.ndarray, dt: float, longest: float = np.inf) -> float:
    """Time of the highest peak of the mean power spectrum of the (standardized) channels of ``x``, among
    periods up to ``longest``."""
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    power = (np.abs(np.fft.rfft(z, axis=0)) ** 2).mean(1)
    freqs = np.fft.rfftfreq(x.shape[0], dt)
    allowed = np.flatnonzero(freqs >= 1.0 / longest)
    allowed = allowed[allowed > 0]
    return float(1.0 / freqs[allowed[int(np.argmax(power[allowed]))]])


def largest_lyapunov(f, y0: np.ndarray, period: float, periods: int = LYAPUNOV_PERIODS) -> float:
    """Benettin's estimate, per period: two states ``1e-8`` apart, renormalised after every period."""
    dim = y0.size
    gap0 = 1e-8

    def pair(t: float, y: np.ndarray) -> np.ndarray:
        return np.concatenate([f(t, y[:dim]), f(t, y[dim:])])

    y = np.concatenate([y0, y0 + gap0 / np.sqrt(dim)])
    total = 0.0
    for step in range(periods + 5):
        y = solve_ivp(pair, (0.0, period), y, method="DOP853", rtol=1e-10, atol=1e-10).y[:, -1]
        gap = float(np.linalg.norm(y[dim:] - y[:dim]))
        if not np.isfinite(gap) or gap == 0:
            return float("nan")
        if step >= 5:  # the first periods align the separation with the unstable direction
            total += np.log(gap / gap0)
        y[dim:] = y[:dim] + (y[dim:] - y[:dim]) * (gap0 / gap)
    return total / periods


def spectral_entropy(x: np.ndarray) -> float:
    """Normalised entropy (0: one line, 1: white) of the mean Welch spectrum of the standardized channels."""
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    _, power = welch(z, nperseg=min(512, z.shape[0]), axis=0)
    p = power.mean(1)[1:]
    p = p / p.sum()
    return float(-(p * np.log(p + 1e-300)).sum() / np.log(p.size))


# ----------------------------------------------------------------------------------------------- features
_QUANTILES = np.linspace(0.02, 0.98, 13)
_BANDS = np.geomspace(1 / 512, 0.5, 13)


def correlation_dimension(x: np.ndarray, points: int = 1_000) -> float:
    """Grassberger-Procaccia slope of ``log C(r)`` against ``log r`` between the 1st and 10th percentile of
    the distances of ``points`` evenly spaced states (standardized), pairs closer than 10 samples in time
    left out (Theiler window)."""
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    z = z[:: max(1, z.shape[0] // points)][:points]
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    i, j = np.triu_indices(z.shape[0], k=10)
    dist = np.sort(d[i, j])
    dist = dist[dist > 1e-9 * max(float(dist[-1]), 1e-300)]
    if dist.size < 100:  # (nearly) a single point: dimension 0
        return 0.0
    radii = np.geomspace(np.quantile(dist, 0.01), np.quantile(dist, 0.10), 8)
    counts = np.searchsorted(dist, radii) / dist.size
    return float(np.polyfit(np.log(radii), np.log(counts), 1)[0])


def invariant_features(x: np.ndarray) -> dict[str, Any]:
    """Correlation dimension, banded power spectrum and standardized marginals of a trajectory sampled at
    50 points per period (only its first :data:`FEATURE_POINTS` points are used)."""
    x = np.asarray(x, dtype=float)[:FEATURE_POINTS]
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    freqs, power = welch(z, nperseg=min(1024, z.shape[0]), axis=0)
    mean_power = power.mean(1)
    band = np.digitize(freqs, _BANDS)
    spectrum = np.bincount(band, weights=mean_power, minlength=_BANDS.size + 1)
    return {
        "corr_dim": correlation_dimension(x),
        "spectrum": (spectrum / spectrum.sum()).tolist(),
        "marginals": np.quantile(z, _QUANTILES, axis=0).T.tolist(),  # one row per channel
    }


def _components(a: dict[str, Any], b: dict[str, Any]) -> np.ndarray:
    """Unscaled distances: correlation dimensions, spectra (total variation), marginals (each channel of
    ``a`` to its nearest channel of ``b``, sign flips allowed: a coupling's permutation can flip one)."""
    spectrum = 0.5 * np.abs(np.asarray(a["spectrum"]) - np.asarray(b["spectrum"])).sum()
    qa, qb = np.asarray(a["marginals"]), np.asarray(b["marginals"])
    flipped = -qb[:, ::-1]
    per_channel = [
        min(np.abs(row - qb).mean(1).min(), np.abs(row - flipped).mean(1).min()) for row in qa
    ]  # fmt: skip
    return np.asarray([abs(a["corr_dim"] - b["corr_dim"]), spectrum, float(np.mean(per_channel))])


def distance(a: dict[str, Any], b: dict[str, Any], scales: np.ndarray) -> float:
    """The declared distance: the sum of the three components, each divided by its median over pairs of
    distinct held-out systems (``scales``), so a typical pair of distinct systems is about 3 apart."""
    return float((_components(a, b) / scales).sum())


def held_out_reference(trajectories: dict[str, np.ndarray]) -> dict[str, Any]:
    """Features of the held-out systems, the component scales and the threshold.

    The threshold is the 75th percentile, over the held-out systems, of a system's distance to *itself*
    measured on the two halves of its trajectory: a candidate closer than that to a held-out system is
    as close as most held-out systems' own second halves are to their first, and is dropped. (Distinct
    held-out systems lie farther apart: the 5th percentile of their nearest-neighbour distances is above
    it, see ``docs/training.md``.)
    """
    names = sorted(trajectories)
    first = {n: invariant_features(trajectories[n][:FEATURE_POINTS]) for n in names}
    second = {n: invariant_features(trajectories[n][FEATURE_POINTS : 2 * FEATURE_POINTS]) for n in names}
    pairs = np.asarray([_components(first[a], first[b]) for a in names for b in names if a != b])
    scales = np.median(pairs, axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    self_distance = [distance(second[n], first[n], scales) for n in names]
    return {
        "features": first,
        "scales": scales.tolist(),
        "threshold": float(np.quantile(self_distance, THRESHOLD_QUANTILE)),
        "self_distance": dict(zip(names, map(float, self_distance), strict=True)),
    }


def nearest_held_out(features: dict[str, Any], reference: dict[str, Any]) -> tuple[str, float]:
    """The held-out system nearest to ``features`` and its distance."""
    scales = np.asarray(reference["scales"])
    best = min(reference["features"].items(), key=lambda item: distance(features, item[1], scales))
    return best[0], distance(features, best[1], scales)


# --------------------------------------------------------------------------------------------- candidates
def make_candidate(spec: dict[str, Any], base: dict[str, Any], n_points: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Integrate one candidate and run tests 1-5; raises ``_Rejected`` with the reason of the first failure."""
    f, y0, observed = vector_field(spec, base)
    dt_probe = 0.02 if spec["family"] != "quadratic" else 0.05
    t_probe = PROBE_TIME if spec["family"] != "quadratic" else 4 * PROBE_TIME
    grid = np.arange(0.0, t_probe, dt_probe)
    probe = _solve(f, y0, grid[-1], grid, rtol=1e-8)
    if probe.shape[0] < grid.size:
        raise _Rejected("unbounded")
    late = probe[probe.shape[0] // 2 :, observed]
    if (late.std(0) < MIN_LATE_STD * np.maximum(probe[:, observed].std(0), 1e-12)).any() or (late.std(0) < 1e-6).any():
        raise _Rejected("collapsed to a fixed point")
    # the training systems enter in their own period as the time unit (as dysts samples them); a random
    # flow's period is its spectrum's peak, among periods short enough to recur ten times in the probe
    period = 1.0 if spec["family"] != "quadratic" else dominant_period(late, dt_probe, late.shape[0] * dt_probe / 10)
    dt = period / POINTS_PER_PERIOD
    transient = n_points // 10
    times = np.arange(transient + n_points) * dt
    full = _solve(f, probe[-1], times[-1], times, rtol=1e-10)
    if full.shape[0] < times.size:
        raise _Rejected("unbounded")
    trajectory = full[transient:]
    facts: dict[str, Any] = {"period": period, "dt": dt}
    z = trajectory[:, observed]
    if (z[-n_points // 5 :].std(0) < 1e-6).any():
        raise _Rejected("collapsed to a fixed point")
    lyapunov = largest_lyapunov(f, trajectory[-1], period)
    facts["lyapunov_per_period"] = lyapunov
    if not np.isfinite(lyapunov) or lyapunov <= MIN_LYAPUNOV:
        raise _Rejected(f"not chaotic (largest Lyapunov exponent {lyapunov:.4f} per period)")
    facts["spectral_entropy"] = entropy = spectral_entropy(z)
    if entropy < MIN_SPECTRAL_ENTROPY:
        raise _Rejected(f"narrow spectrum (entropy {entropy:.3f})")
    return z, facts


def _attempt(task: tuple[dict[str, Any], dict[str, Any], int, dict[str, Any]]) -> tuple[np.ndarray | None, dict]:
    """A worker's job: one candidate under a time limit, with its features and nearest held-out system."""
    spec, base, n_points, reference = task

    def alarm(*_: Any) -> None:
        raise _Rejected(f"took longer than {TIME_LIMIT} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIME_LIMIT)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            trajectory, facts = make_candidate(spec, base, n_points)
            features = invariant_features(trajectory)
    except _Rejected as exc:
        return None, {"rejected": str(exc)}
    except Exception as exc:  # a draw the integrator cannot handle is a rejection, not a crash
        return None, {"rejected": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        signal.alarm(0)
    nearest, gap = nearest_held_out(features, reference)
    facts.update(corr_dim=features["corr_dim"], nearest_held_out=nearest, distance=gap)
    if gap < reference["threshold"]:
        return None, {**facts, "rejected": f"near the held-out system {nearest} (distance {gap:.2f})"}
    return trajectory.astype(np.float32), facts


def generate(
    cache_dir: str | Path,
    n_candidates: int,
    held_out: dict[str, np.ndarray],
    dim: int = 3,
    seed: int = 0,
    n_points: int = 12_000,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Draw and test candidates ``0 .. n_candidates - 1`` of the corpus ``(seed, dim)``; resumable.

    Kept trajectories are written to ``cache_dir/<key>.npy`` (float32, observed channels) and every
    candidate's spec and outcome to ``cache_dir/manifest.json``, after each candidate, so an interrupted
    run continues where it stopped and a larger ``n_candidates`` extends a corpus.

    Parameters
    ----------
    cache_dir : str or Path
        The corpus folder (outside git: the trajectories are large).
    n_candidates : int
        Candidates to draw in all (kept or not).
    held_out : dict of str to ndarray
        The held-out systems' trajectories (50 points per period, at least 12,000 points); candidates
        near one of them are dropped.
    dim : {3, 6}
        Observed channels.
    seed : int
        The corpus's seed; candidate ``i`` is drawn from ``(seed, dim, i)``.
    n_points : int
        Points per kept trajectory.
    workers : int
        Worker processes.

    Returns
    -------
    dict
        The manifest: ``settings``, ``reference`` (threshold and scales) and ``candidates`` by key.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    for name, value, low in (
        ("n_candidates", n_candidates, 1),
        ("workers", workers, 1),
        ("n_points", n_points, FEATURE_POINTS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int of at least {low}, got {value!r}.")
    if not held_out:
        raise ValueError("held_out is empty: the distance rule needs the held-out systems' trajectories.")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "manifest.json"
    settings = {"seed": seed, "dim": dim, "n_points": n_points}
    manifest = json.loads(path.read_text()) if path.exists() else {}
    if manifest and manifest.get("settings") != settings:
        raise ValueError(
            f"{path} holds a corpus with settings {manifest.get('settings')}; use another folder for {settings}."
        )
    base = skeletons(cache)
    reference_path = cache / "held_out_reference.json"
    if reference_path.exists():
        reference = json.loads(reference_path.read_text())
    else:
        reference = held_out_reference(held_out)
        reference_path.write_text(json.dumps(reference) + "\n")
    manifest = {
        "settings": settings,
        "reference": {"threshold": reference["threshold"], "scales": reference["scales"]},
        "candidates": manifest.get("candidates", {}),
    }
    todo = [i for i in range(n_candidates) if f"d{dim}_s{seed}_{i:05d}" not in manifest["candidates"]]
    bar = tqdm(total=len(todo), desc=f"{dim}-D flows", disable=not progress)

    def record(index: int, trajectory: np.ndarray | None, facts: dict, spec: dict) -> None:
        key = f"d{dim}_s{seed}_{index:05d}"
        if trajectory is not None:
            np.save(cache / f"{key}.npy", trajectory)
        manifest["candidates"][key] = {"spec": spec, **facts}
        # Written beside and renamed: a process stopped mid-write (or a reader meanwhile) never sees half a file.
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(manifest, sort_keys=True) + "\n")
        os.replace(partial, path)
        bar.update(1)

    specs = {i: draw_spec(seed, i, dim, base) for i in todo}
    if workers <= 1:
        for i in todo:
            trajectory, facts = _attempt((specs[i], base, n_points, reference))
            record(i, trajectory, facts, specs[i])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = iter(todo)
            running = {}
            for i in itertools.islice(pending, 2 * workers):
                running[pool.submit(_attempt, (specs[i], base, n_points, reference))] = i
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    i = running.pop(future)
                    record(i, *future.result(), specs[i])
                    for j in itertools.islice(pending, 1):
                        running[pool.submit(_attempt, (specs[j], base, n_points, reference))] = j
    bar.close()
    return manifest


def kept(cache_dir: str | Path, count: int | None = None) -> dict[str, np.ndarray]:
    """The first ``count`` kept trajectories of a corpus (in the order drawn; all when None)."""
    cache = Path(cache_dir)
    manifest = json.loads((cache / "manifest.json").read_text())
    keys = sorted(k for k, v in manifest["candidates"].items() if "rejected" not in v)
    if count is not None:
        if count > len(keys):
            raise ValueError(f"{cache} holds {len(keys)} kept systems, {count} asked; generate more candidates.")
        keys = keys[:count]
    return {key: np.load(cache / f"{key}.npy") for key in keys}


def held_out_trajectories(folder: str | Path | None = None) -> dict[str, np.ndarray]:
    """The held-out dysts systems of a stored folder (``index.json``: every system outside DynaMix's training
    set, ``dysts/`` layout of 12,000 points at 50 points per period), ``$DYNAMIX_DYSTS_DIR`` by default."""
    from .data import DYSTS_DIR_ENV, dysts_dir

    root = dysts_dir(folder)
    if root is None or not (root / "index.json").exists():
        raise FileNotFoundError(
            f"The distance rule needs the held-out dysts trajectories: pass their folder (e.g. ../shared/data/dysts, "
            f"with index.json) or set {DYSTS_DIR_ENV}."
        )
    index = json.loads((root / "index.json").read_text())
    names = [n for n, info in index.items() if "error" not in info and not info.get("in_dynamix_training_set")]
    return {n: np.load(root / f"{n}.npy").astype(np.float64) for n in names}


def main(argv: list[str] | None = None) -> None:
    """``python -m dynamix_forecasting.training.universe``: generate (or extend) a corpus."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="dynamix generate-systems",
        description="Generate (or extend) a corpus of new chaotic flows from the 30 training systems; resumable.",
    )
    parser.add_argument("--cache", required=True, help="corpus folder (outside git)")
    parser.add_argument("--candidates", type=int, required=True, help="candidates to draw in all")
    parser.add_argument("--dim", type=int, default=3, choices=[3, 6], help="observed channels")
    parser.add_argument("--seed", type=int, default=0, help="the corpus's seed (validation: another one)")
    parser.add_argument("--points", type=int, default=12_000, help="points per kept trajectory")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--held-out", default=None, help="folder of the held-out dysts trajectories")
    args = parser.parse_args(argv)
    manifest = generate(
        args.cache, args.candidates, held_out_trajectories(args.held_out), args.dim, args.seed, args.points,
        args.workers,
    )  # fmt: skip
    outcomes = [v.get("rejected", "kept").split(" (")[0] for v in manifest["candidates"].values()]
    for reason in sorted(set(outcomes)):
        print(f"{reason}: {outcomes.count(reason)}")


if __name__ == "__main__":
    main()
