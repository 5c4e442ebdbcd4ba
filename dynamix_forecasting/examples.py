"""Example series the package makes itself (no downloads): a Lorenz-63 trajectory."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp


def lorenz63(
    n_steps: int = 6000,
    *,
    dt: float = 0.025,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    transient: int = 1000,
    initial: tuple[float, float, float] = (1.0, 1.0, 1.0),
    standardize: bool = True,
) -> np.ndarray:
    """Integrate the Lorenz-63 system with scipy (DOP853, rtol = atol = 1e-10).

    Parameters
    ----------
    n_steps : int, default 6000
        Number of returned points, ``dt`` apart, after a discarded transient.
    dt : float, default 0.025
        Sampling interval (about 30 points per loop of the attractor).
    sigma, rho, beta : float
        Lorenz parameters (chaotic defaults).
    transient : int, default 1000
        Points dropped at the start so the trajectory lies on the attractor.
    initial : tuple of float
        Initial condition.
    standardize : bool, default True
        Return the trajectory with zero mean and unit variance per channel.

    Returns
    -------
    numpy.ndarray
        ``(n_steps, 3)`` trajectory.
    """

    def rhs(_t: float, u: np.ndarray) -> list[float]:
        x, y, z = u
        return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]

    total = n_steps + transient
    t_eval = np.arange(total) * dt
    sol = solve_ivp(rhs, (0.0, t_eval[-1]), initial, t_eval=t_eval, method="DOP853", rtol=1e-10, atol=1e-10)
    traj = sol.y.T[transient:]
    if standardize:
        traj = (traj - traj.mean(0)) / traj.std(0)
    return traj
