"""Training corpora: the published one (30 dysts systems plus four of them in a second parameter regime) and
new chaotic regimes of its systems (:func:`perturbed_regimes`).

The paper trains on 34 trajectories of 100,000 points at 50 points per period: 30 chaotic 3-D flows of
the dysts collection, four of them also in a second parameter regime. The second regimes are not
published; :data:`SECOND_REGIMES` picks four from the literature, each checked here to be chaotic
(largest Lyapunov exponent above zero, estimated with two nearby trajectories, Benettin's method).
Their sampling step is set from the new regime's dominant period, so each has 50 points per period
as the others do. Integrated trajectories are cached as ``.npy`` files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .universe import dominant_period as universe_dominant_period

#: Second parameter regimes: system, parameters, source. Chaotic regimes documented in the literature.
SECOND_REGIMES: dict[str, dict] = {
    "Rossler": {
        "params": {"a": 0.1, "b": 0.1, "c": 14.0},
        "source": "the c = 14 attractor of the Rossler family a = b = 0.1 (Wikipedia, 'Rossler attractor')",
    },
    "ShimizuMorioka": {
        "params": {"a": 0.75, "b": 0.45},
        "source": "Shimizu & Morioka (1980), the original chaotic parameters lambda = 0.75, alpha = 0.45",
    },
    "Chen": {
        "params": {"a": 40.0, "b": 3.0, "c": 28.0},
        "source": "Chen & Ueta (1999) attractor family with a raised to 40",
    },
    "Rucklidge": {
        "params": {"a": 2.0, "b": 6.7 * 1.1},
        "source": "Rucklidge (1992) with the Rayleigh-number parameter b raised 10 %",
    },
}


def _rhs(system):
    def f(t, x):
        return np.asarray(system.rhs(x, t), dtype=np.float64)

    return f


def dominant_period(trajectory: np.ndarray, dt: float) -> float:
    """Time of the highest peak of the power spectrum of the first channel (mean removed)."""
    return universe_dominant_period(trajectory[:, :1], dt)


def largest_lyapunov(system, x0: np.ndarray, dt: float, steps: int = 4000, transient: int = 500) -> float:
    """Largest Lyapunov exponent (per unit time): two trajectories 1e-8 apart, renormalised every ``dt``."""
    from scipy.integrate import solve_ivp

    f = _rhs(system)
    x = np.asarray(x0, dtype=np.float64)
    for _ in range(transient):
        x = solve_ivp(f, (0, dt), x, method="DOP853", rtol=1e-10, atol=1e-10).y[:, -1]
    direction = np.ones_like(x) / np.sqrt(x.size)
    y = x + 1e-8 * direction
    total = 0.0
    for _ in range(steps):
        x = solve_ivp(f, (0, dt), x, method="DOP853", rtol=1e-10, atol=1e-10).y[:, -1]
        y = solve_ivp(f, (0, dt), y, method="DOP853", rtol=1e-10, atol=1e-10).y[:, -1]
        gap = np.linalg.norm(y - x)
        total += np.log(gap / 1e-8)
        y = x + (y - x) * (1e-8 / gap)
    return total / (steps * dt)


def integrate_regime(name: str, params: dict, n_points: int) -> tuple[np.ndarray, dict]:
    """A dysts system with other parameters at 50 points per period of *that* regime (DOP853, 1e-10).

    Returns the trajectory and facts about it (period, sampling step, largest Lyapunov exponent).
    """
    import dysts.flows as flows

    system = getattr(flows, name)(parameters=params)
    probe = np.asarray(system.make_trajectory(20_000, pts_per_period=50, method="DOP853", rtol=1e-10, atol=1e-10))
    dt_probe = float(system.period) / 50
    period = dominant_period(probe[5_000:], dt_probe)
    system.period = period
    trajectory = np.asarray(
        system.make_trajectory(n_points, pts_per_period=50, method="DOP853", rtol=1e-10, atol=1e-10), dtype=np.float64
    )
    lyapunov = largest_lyapunov(system, trajectory[-1], period / 50, steps=2000, transient=200)
    return trajectory, {"params": params, "period": period, "dt": period / 50, "largest_lyapunov": lyapunov}


def published_corpus(
    stored: str | Path,
    cache_dir: str | Path,
    n_points: int = 100_000,
    second_regimes: bool = True,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """The 34 trajectories of the published recipe (30 when ``second_regimes`` is False).

    Parameters
    ----------
    stored : str or Path
        Folder of the 30 systems at the published scale (``<System>.npy`` and ``index.json``, e.g.
        ``../shared/data/dysts-train-100k``).
    cache_dir : str or Path
        Where the second-regime trajectories are written once (and read from afterwards), with
        ``regimes.json`` recording their parameters, period and largest Lyapunov exponent.
    n_points : int, default 100_000
        Points per trajectory.
    """
    stored, cache = Path(stored), Path(cache_dir)
    if not (stored / "index.json").exists():
        raise FileNotFoundError(
            f"{stored} has no index.json; point it at the published-scale trajectories (e.g. "
            "../shared/data/dysts-train-100k)."
        )
    index = json.loads((stored / "index.json").read_text())
    # the published-scale folder holds the training systems only; a full dysts folder marks them in its index
    names = [n for n, info in index.items() if "error" not in info and info.get("in_dynamix_training_set", True)]
    out = {name: np.load(stored / f"{name}.npy")[:n_points].astype(np.float64) for name in names}
    if not second_regimes:
        return out
    cache.mkdir(parents=True, exist_ok=True)
    facts_path = cache / "regimes.json"
    facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
    for name, spec in tqdm(SECOND_REGIMES.items(), desc="second regimes", disable=not progress):
        path = cache / f"{name}_regime2.npy"
        if path.exists() and facts.get(name, {}).get("params") == spec["params"] and np.load(path).shape[0] >= n_points:
            out[f"{name}_regime2"] = np.load(path)[:n_points]
            continue
        trajectory, info = integrate_regime(name, spec["params"], n_points)
        if not np.isfinite(trajectory).all() or info["largest_lyapunov"] <= 0:
            raise RuntimeError(f"The second regime of {name} ({spec['params']}) is not a chaotic trajectory: {info}.")
        np.save(path, trajectory)
        facts[name] = {**info, "source": spec["source"]}
        facts_path.write_text(json.dumps(facts, indent=2) + "\n")
        out[f"{name}_regime2"] = trajectory
    return out


def _perturbed_trajectory(task: tuple[str, int, float, int, int]) -> tuple[str, np.ndarray | None, dict]:
    """One attempt at a perturbed regime: every parameter scaled by ``1 + U(-spread, spread)``, the initial
    condition by ``1 + N(0, 0.1)``; kept only if finite and chaotic (largest Lyapunov exponent above
    0.01 per period). Runs in a worker process, each attempt under a 60 s alarm (stiff regimes hang)."""
    import signal

    import dysts.flows as flows

    name, seed, spread, n_points, attempt = task
    rng = np.random.default_rng([seed, attempt])
    base = getattr(flows, name)()
    params = {k: float(v) * (1 + rng.uniform(-spread, spread)) for k, v in base.parameters.items()}
    facts: dict = {"system": name, "params": params, "attempt": attempt}

    def alarm(*_):
        raise TimeoutError("integration took longer than 60 s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            system = getattr(flows, name)(parameters=params)
            system.ic = np.asarray(base.ic, dtype=np.float64) * (1 + 0.1 * rng.standard_normal(len(base.ic)))
            transient = n_points // 10
            trajectory = np.asarray(
                system.make_trajectory(
                    n_points + transient, pts_per_period=50, method="DOP853", rtol=1e-10, atol=1e-10
                ),
                dtype=np.float64,
            )[transient:]
            if trajectory.shape[0] < n_points or not np.isfinite(trajectory).all():
                return name, None, {**facts, "rejected": "not finite or integration stopped"}
            if np.abs(trajectory).max() > 1e6 or (trajectory[-n_points // 5 :].std(0) < 1e-6).any():
                return name, None, {**facts, "rejected": "unbounded or collapsed to a fixed point"}
            dt = float(system.period) / 50
            lyapunov = largest_lyapunov(system, trajectory[-1], dt, steps=400, transient=50)
    except Exception as exc:
        return name, None, {**facts, "rejected": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        signal.alarm(0)
    facts.update(largest_lyapunov=lyapunov, period=float(system.period))
    if not np.isfinite(lyapunov) or lyapunov * float(system.period) <= 0.01:
        return name, None, {**facts, "rejected": f"not chaotic (largest Lyapunov exponent {lyapunov:.4f})"}
    return name, trajectory, facts


def perturbed_regimes(
    systems: list[str],
    per_system: int,
    cache_dir: str | Path,
    spread: float = 0.15,
    n_points: int = 20_000,
    seed: int = 0,
    max_attempts: int = 1,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """New chaotic regimes of the training systems: random parameters and initial conditions, kept if chaotic.

    Systems without parameters are left out (they have no other regime).

    Each system gets ``per_system`` draws, each tried at most ``max_attempts`` times until one is finite,
    bounded and chaotic (see :func:`_perturbed_trajectory`); a draw whose attempts all fail is dropped. Trajectories and their facts (parameters,
    period, largest Lyapunov exponent, or why an attempt was rejected) are cached in ``cache_dir``
    (``regimes.json``); a seed names its own set, so a validation set drawn with another seed shares no
    regime with the training set.

    Parameters
    ----------
    systems : list of str
        dysts systems to perturb (the training systems; never a held-out one).
    per_system : int
        Regimes per system.
    cache_dir : str or Path
        Cache folder.
    spread : float, default 0.15
        Relative half-width of the uniform parameter perturbation.
    n_points : int, default 20_000
        Points per trajectory (after a discarded transient of a tenth of that), 50 points per period.
    seed : int, default 0
        Seed of the draws.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    facts_path = cache / "regimes.json"
    facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
    out: dict[str, np.ndarray] = {}
    todo: dict[str, int] = {}  # key -> next attempt
    import dysts.flows as flows

    # a system without parameters (SprottE, SprottJ, SprottN) has no other regime: a draw would only move
    # its initial condition and return the same attractor
    systems = [name for name in systems if getattr(flows, name)().parameters]
    for name in systems:
        for k in range(per_system):
            key = f"{name}_s{seed}_r{k}"
            path = cache / f"{key}.npy"
            info = facts.get(key, {})
            same = info.get("spread") == spread and info.get("n_points") == n_points
            if same and "rejected" not in info and path.exists():
                out[key] = np.load(path)
            elif same and "rejected" in info:
                if info["attempt"] + 1 < max_attempts:
                    todo[key] = info["attempt"] + 1  # an interrupted run resumes where it stopped
            else:
                todo[key] = 0
    bar = tqdm(total=len(todo), desc="perturbed regimes", disable=not progress)

    def task(key: str) -> tuple[str, int, float, int, int]:
        return key.rsplit("_s", 1)[0], seed * 1_000_003 + _stable_hash(key), spread, n_points, todo[key]

    with ProcessPoolExecutor(max_workers=workers) as pool:
        running = {pool.submit(_perturbed_trajectory, task(key)): key for key in todo}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                _, trajectory, info = future.result()
                info.update(spread=spread, n_points=n_points)
                facts[key] = info  # after every attempt, so an interrupted run loses nothing
                if trajectory is not None:
                    np.save(cache / f"{key}.npy", trajectory)
                    out[key] = trajectory
                    bar.update(1)
                elif todo[key] + 1 < max_attempts:
                    todo[key] += 1
                    running[pool.submit(_perturbed_trajectory, task(key))] = key
                else:
                    bar.update(1)
                facts_path.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    bar.close()
    return out


def _stable_hash(key: str) -> int:
    """A stable small integer of a string (Python's ``hash`` changes between runs)."""
    import zlib

    return zlib.crc32(key.encode()) % 1_000_003
