"""Plots of forecasts: attractors in 3-D/2-D, time series with quantile bands, power spectra."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .metrics import _as_2d, _smoothed_spectrum

COLORS = {"context": "#4c72b0", "forecast": "#dd5143", "truth": "#2a9d5c"}


def plot_attractor(
    context: Any,
    forecast: Any,
    truth: Any = None,
    *,
    dims: Sequence[int] = (0, 1, 2),
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Plot context, forecast and (optionally) the true continuation in state space.

    Parameters
    ----------
    context, forecast, truth : array-like
        Trajectories ``(T, N)``; ``truth`` is optional.
    dims : sequence of int, default (0, 1, 2)
        Channels to show; three give a 3-D plot, two a 2-D plot.
    ax : matplotlib Axes, optional
        Axes to draw into (3-D axes for three dims); a new figure otherwise.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    dims = list(dims)[: min(3, _as_2d(forecast, "forecast").shape[1])]
    if len(dims) < 2:
        raise ValueError("plot_attractor needs at least two channels; use plot_forecast for univariate series.")
    if ax is None:
        fig = plt.figure(figsize=(6, 5))
        ax = fig.add_subplot(111, projection="3d" if len(dims) == 3 else None)
    for name, data, width in (("context", context, 0.6), ("truth", truth, 0.6), ("forecast", forecast, 0.8)):
        if data is None:
            continue
        arr = _as_2d(data, name)[:, dims]
        ax.plot(*arr.T, lw=width, color=COLORS[name], label=name, alpha=0.9)
    labels = [f"x{d}" for d in dims]
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if len(dims) == 3:
        ax.set_zlabel(labels[2])  # type: ignore[attr-defined]  # a 3-D Axes
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_forecast(
    context: Any,
    forecast: Any = None,
    *,
    samples: Any = None,
    truth: Any = None,
    interval: tuple[float, float] = (0.1, 0.9),
    channel_names: Sequence[str] | None = None,
    context_tail: int | None = None,
    title: str | None = None,
) -> Figure:
    """Plot each channel's context, forecast, true continuation and a shaded quantile band.

    Parameters
    ----------
    context : array-like
        ``(T, F)`` or ``(T,)`` context.
    forecast : array-like, optional
        ``(H, F)`` point forecast; the sample median when omitted and ``samples`` is given.
    samples : array-like, optional
        ``(K, H, F)`` sample paths; their ``interval`` quantiles are shaded.
    truth : array-like, optional
        True continuation ``(H', F)``.
    interval : tuple of float, default (0.1, 0.9)
        Lower and upper quantile of the band.
    channel_names : sequence of str, optional
        Names for the subplot labels.
    context_tail : int, optional
        Show only the last ``context_tail`` context points.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ctx = _as_2d(context, "context")
    band = None
    if samples is not None:
        smp = np.asarray(samples.detach().cpu() if hasattr(samples, "detach") else samples, dtype=np.float64)
        if smp.ndim == 2:
            smp = smp[..., None]
        band = np.quantile(smp, interval, axis=0)
        if forecast is None:
            forecast = np.median(smp, axis=0)
    if forecast is None:
        raise ValueError("plot_forecast needs a forecast or samples.")
    fc = _as_2d(forecast, "forecast")
    if context_tail:
        ctx = ctx[-context_tail:]
    t_ctx = np.arange(-ctx.shape[0], 0)
    t_fc = np.arange(fc.shape[0])
    n = fc.shape[1]
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.4 * n), sharex=True, squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        ax.plot(t_ctx, ctx[:, k], color=COLORS["context"], lw=1, label="context")
        if truth is not None:
            tr = _as_2d(truth, "truth")
            ax.plot(np.arange(tr.shape[0]), tr[:, k], color=COLORS["truth"], lw=1, label="truth")
        if band is not None:
            ax.fill_between(
                t_fc,
                band[0][:, k],
                band[1][:, k],
                color=COLORS["forecast"],
                alpha=0.25,
                label=f"{interval[0]:.0%}-{interval[1]:.0%} band",
            )
        ax.plot(t_fc, fc[:, k], color=COLORS["forecast"], lw=1.2, label="forecast")
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set_ylabel(channel_names[k] if channel_names else f"x{k}")
    axes[0, 0].legend(loc="upper left", fontsize=8, ncol=4)
    axes[-1, 0].set_xlabel("steps (0 = forecast start)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_power_spectrum(truth: Any, forecast: Any, *, smoothing: float = 20.0, title: str | None = None) -> Figure:
    """Plot the smoothed, normalized power spectra (as used by ``D_H``) of truth and forecast per channel."""
    tr, fc = _as_2d(truth, "truth"), _as_2d(forecast, "forecast")
    steps = min(tr.shape[0], fc.shape[0])
    n = tr.shape[1]
    fig, axes = plt.subplots(1, n, figsize=(3.5 * n, 3), squeeze=False)
    for k, ax in enumerate(axes[0]):
        for name, data in (("truth", tr), ("forecast", fc)):
            spec = _smoothed_spectrum(data[:steps, k], smoothing)
            ax.semilogy(spec + 1e-12, color=COLORS[name], label=name, lw=1)
        ax.set_xlim(0, max(10, steps // 20))
        ax.set_title(f"x{k}")
        ax.set_xlabel("frequency bin")
    axes[0, 0].set_ylabel("normalized power")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_expert_composition(
    forecast: Any,
    weights: Any,
    *,
    context: Any = None,
    channel: int = 0,
    title: str | None = None,
) -> Figure:
    """A forecast with its expert composition underneath: the stacked gating weights at every step.

    Parameters
    ----------
    forecast : array-like
        ``(H,)`` or ``(H, F)`` forecast of one series (:meth:`DynaMixPipeline.expert_weights` with
        ``return_forecast=True`` returns it with the weights).
    weights : array-like
        ``(H, experts)`` expert weights of the same rollout.
    context : array-like, optional
        The context, drawn before the forecast.
    channel : int, default 0
        Channel of the forecast to draw.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    f = _as_2d(forecast, "forecast")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != f.shape[0]:
        raise ValueError(
            f"weights must be (horizon, experts) with the forecast's {f.shape[0]} steps, got shape {w.shape}; pass "
            "one series' weights."
        )
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    steps = np.arange(1, f.shape[0] + 1)
    if context is not None:
        c = _as_2d(context, "context")[:, channel]
        top.plot(np.arange(-c.shape[0] + 1, 1), c, color=COLORS["context"], lw=0.8, label="context")
    top.plot(steps, f[:, channel], color=COLORS["forecast"], lw=0.9, label="forecast")
    top.set_ylabel(f"x{channel}")
    top.legend(loc="upper left", fontsize=8)
    colors = plt.get_cmap("tab10" if w.shape[1] <= 10 else "tab20")(np.arange(w.shape[1]) % 20)
    bottom.stackplot(steps, w.T, colors=colors, labels=[f"expert {j}" for j in range(w.shape[1])], lw=0)
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("forecast step")
    bottom.set_ylabel("expert weight")
    bottom.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    if context is not None:
        bottom.set_xlim(top.get_xlim())
    fig.suptitle(title or "Expert composition of the forecast")
    fig.tight_layout()
    return fig


def plot_usage_heatmap(usages: Any, names: Sequence[str], *, title: str | None = None) -> Figure:
    """Heat map of the time-averaged expert usage of many systems (rows) over the experts (columns)."""
    u = np.asarray(usages, dtype=np.float64)
    if u.ndim != 2 or u.shape[0] != len(names):
        raise ValueError(f"usages must be (systems, experts) with one row per name, got {u.shape} for {len(names)}.")
    fig, ax = plt.subplots(figsize=(1.5 + 0.45 * u.shape[1], 1.0 + 0.22 * u.shape[0]))
    im = ax.imshow(u, aspect="auto", cmap="viridis", vmin=0)
    ax.set_yticks(range(len(names)), list(names), fontsize=7)
    ax.set_xticks(range(u.shape[1]), [str(j) for j in range(u.shape[1])])
    ax.set_xlabel("expert")
    fig.colorbar(im, ax=ax, label="mean weight over the forecast")
    ax.set_title(title or "Expert usage per system")
    fig.tight_layout()
    return fig


def plot_usage_dendrogram(usages: Any, names: Sequence[str], *, title: str | None = None) -> Figure:
    """Dendrogram of systems by the Jensen-Shannon distance of their expert usage (average linkage)."""
    from scipy.cluster.hierarchy import dendrogram

    from .composition import cluster_systems

    _, tree = cluster_systems(np.asarray(usages), names)
    fig, ax = plt.subplots(figsize=(5, 1.0 + 0.22 * len(names)))
    dendrogram(tree, labels=list(names), orientation="left", ax=ax, leaf_font_size=7)
    ax.set_xlabel("Jensen-Shannon distance of expert usage")
    ax.set_title(title or "Systems by expert usage")
    fig.tight_layout()
    return fig
