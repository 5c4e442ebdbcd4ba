"""The benchmarked models behind one interface.

Every model answers the time-series track with ``forecast_ts(histories, horizon, seasonality)`` ->
``(median (S, H), quantiles (Q, S, H))`` at :data:`~benchmarks.scoring.QUANTILES`, and, where it
applies, the dynamical-systems track with ``forecast_dsr(context (T, F), horizon)`` -> ``(H, F)``.
``unavailable()`` gives the reason a model cannot run here (e.g. missing weights), or None.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from dynamix_forecasting.checkpoint import DEFAULT_MODEL
from dynamix_forecasting.model_cache import cached_pipeline

from .parroting import parrot
from .scoring import QUANTILES

Q = np.asarray(QUANTILES)


def fill_missing(history: np.ndarray) -> np.ndarray:
    """Missing values as fev fills them for models that cannot take NaNs: forward fill, then zeros (leading NaNs)."""
    return fill_missing_all([history])[0]


def fill_missing_all(histories: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`fill_missing` of every history, in one pass over their concatenation."""
    flat = np.concatenate(histories)
    valid = np.isfinite(flat)
    if valid.all():
        return histories
    lengths = np.array([h.shape[0] for h in histories])
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)  # where each value's history starts
    last_seen = np.maximum.accumulate(np.where(valid, np.arange(flat.shape[0]), -1))
    filled = np.where(last_seen >= first, flat[np.maximum(last_seen, 0)], 0.0)  # no value yet: 0
    return np.split(filled, np.cumsum(lengths)[:-1])


class BenchModel:
    """Base class: a name, an availability check and the two forecasting calls."""

    name = "model"
    tracks = ("ts",)

    def unavailable(self) -> str | None:
        return None

    def forecast_ts(self, histories: list[np.ndarray], horizon: int, seasonality: int):
        raise NotImplementedError

    def forecast_dsr(self, context: np.ndarray, horizon: int) -> np.ndarray:
        raise NotImplementedError


class SeasonalNaive(BenchModel):
    """The last ``seasonality`` values repeated; the point forecast at every quantile (as fev scores it)."""

    name = "seasonal_naive"

    def forecast_ts(self, histories, horizon, seasonality):
        med = np.stack([np.resize(h[-min(seasonality, h.shape[0]) :], horizon) for h in histories])
        return med, np.broadcast_to(med, (len(Q), *med.shape))


class DynaMixBenchModel(BenchModel):
    """DynaMix through its pipeline (default options), ``num_samples`` sample paths for quantiles."""

    tracks = ("ts", "dsr")

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        num_samples: int = 100,
        max_context: int = 2048,
        seed: int = 0,
        fit_nonstationary: bool = False,
    ) -> None:
        self.model, self.num_samples, self.max_context, self.seed = model, num_samples, max_context, seed
        self.fit_nonstationary = fit_nonstationary
        self.name = "dynamix" if model == DEFAULT_MODEL else f"dynamix[{Path(model).stem}]"
        if fit_nonstationary:
            self.name += "_nonstationary"

    @property
    def pipeline(self):
        return cached_pipeline(self.model)

    def unavailable(self) -> str | None:
        try:
            self.pipeline  # noqa: B018 - loads the checkpoint
        except Exception as exc:
            return f"checkpoint not found ({type(exc).__name__})"
        return None

    def forecast_ts(self, histories, horizon, seasonality):
        contexts = [h[-self.max_context :, None] for h in fill_missing_all(histories)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # divergence is bounded by the guard below and reported by the scores
            paths = self.pipeline.sample_paths(
                contexts,
                horizon,
                mode="dynamics",
                num_samples=self.num_samples,
                seed=self.seed,
                divergence_guard=10.0,
                fit_nonstationary=self.fit_nonstationary,
            )  # (K, H, S, 1)
        paths = paths[..., 0].transpose(0, 2, 1)  # (K, S, H)
        if paths.shape[0] == 1:  # one path: every quantile is that path
            return paths[0], np.repeat(paths, len(Q), axis=0)
        return np.median(paths, axis=0), np.quantile(paths, Q, axis=0)

    def forecast_dsr(self, context, horizon):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.pipeline.forecast(context, horizon, mode="dynamics", seed=self.seed, divergence_guard=10.0)


class DynaMixTimeSeries(BenchModel):
    """DynaMix's time-series mode: season length = the task's seasonality, calibrated quantiles."""

    name = "dynamix_ts"

    def __init__(self, model: str = DEFAULT_MODEL, seed: int = 0) -> None:
        self.model, self.seed = model, seed
        if model != DEFAULT_MODEL:
            self.name = f"dynamix_ts[{Path(model).stem}]"

    @property
    def pipeline(self):
        return cached_pipeline(self.model)

    def unavailable(self) -> str | None:
        return DynaMixBenchModel.unavailable(self)  # type: ignore[arg-type]

    def forecast_ts(self, histories, horizon, seasonality):
        quantiles, point = self.pipeline.predict_quantiles(
            fill_missing_all(histories),
            horizon,
            QUANTILES,
            mode="time_series",
            season_length=seasonality,
            seed=self.seed,
        )  # (H, S, 1, Q), (H, S, 1)
        return point[..., 0].T, quantiles[:, :, 0, :].transpose(2, 1, 0)


class Naive2(BenchModel):
    """The time-series mode's seasonal adjustment followed by a naive forecast (the M4 "Naive2" benchmark).

    The control of ``dynamix_ts``: what the adjustment alone achieves. The point forecast at every quantile,
    as fev scores seasonal naive.
    """

    name = "naive2"

    def forecast_ts(self, histories, horizon, seasonality):
        from dynamix_forecasting.seasonality import fit_adjustment

        out = []
        for h in histories:
            y = fill_missing(h)
            adjustment = fit_adjustment(y, seasonality)
            level = np.full(horizon, (y if adjustment is None else adjustment.adjust(y))[-1])
            out.append(level if adjustment is None else adjustment.restore(level, y.shape[0]))
        med = np.stack(out)
        return med, np.broadcast_to(med, (len(Q), *med.shape))


class Parroting(BenchModel):
    """Context parroting; point forecast and quantiles from the continuations of the ``n_matches`` best distinct
    matches (time series; ``point="best"``, benchmark name ``parroting_best``: the best match's continuation as
    the point forecast). On the systems track the single best match's continuation: a median of chaotic
    trajectories is not a trajectory, and its attractor statistics would be those of a smoothed curve."""

    name = "parroting"
    tracks = ("ts", "dsr")

    def __init__(self, k: int | None = None, n_matches: int = 10, point: str = "median") -> None:
        self.k, self.n_matches, self.point = k, n_matches, point
        if point == "best":
            self.name = "parroting_best"

    def forecast_ts(self, histories, horizon, seasonality):
        k = self.k or max(3, seasonality)
        paths = np.stack([parrot(fill_missing(h), horizon, k=k, n_matches=self.n_matches) for h in histories], 1)
        # parroting: the ensemble median is the point forecast; parroting_best: the best match's continuation
        point = paths[0] if self.point == "best" else np.median(paths, axis=0)
        return point, np.quantile(paths, Q, axis=0)

    def forecast_dsr(self, context, horizon):
        return parrot(context, horizon, k=self.k or 10)[0]


class ConstantMean(BenchModel):
    """The context's mean forever: the reference a forecast must beat on long-term statistics."""

    name = "constant_mean"
    tracks = ("dsr",)

    def forecast_dsr(self, context, horizon):
        return np.broadcast_to(context.mean(0), (horizon, context.shape[1])).copy()


class StatsForecastModel(BenchModel):
    """statsforecast's AutoETS / AutoTheta / AutoARIMA with fev's settings.

    Season length = the task's seasonality, the last 2,500 points as context (fev's setting: with it AutoETS
    reproduces fev's ETTh and exchange_rate scores exactly; with 1,000 it was 5 % and 13 % off), SeasonalNaive
    where a fit fails; quantiles from prediction intervals (level ``100 (1 - 2q)``), the mean as the median.
    """

    def __init__(self, kind: str, n_jobs: int = 1, max_context: int = 2500) -> None:
        self.kind, self.n_jobs, self.max_context = kind, n_jobs, max_context
        self.name = {"AutoETS": "auto_ets", "AutoTheta": "auto_theta", "AutoARIMA": "auto_arima"}[kind]

    def unavailable(self) -> str | None:
        try:
            import statsforecast  # noqa: F401
        except ImportError:
            return "statsforecast is not installed (pip install -e '.[bench]')"
        return None

    def forecast_ts(self, histories, horizon, seasonality):
        import statsforecast.models as sfm
        from statsforecast import StatsForecast

        model = getattr(sfm, self.kind)(season_length=seasonality)
        frames = []
        for i, h in enumerate(histories):
            y = fill_missing(h)[-self.max_context :]
            frames.append(pd.DataFrame({"unique_id": i, "ds": np.arange(y.shape[0]), "y": y}))
        df = pd.concat(frames, ignore_index=True)
        levels = sorted({round(100 * abs(1 - 2 * q)) for q in QUANTILES if q != 0.5})
        sf = StatsForecast(
            models=[model], freq=1, n_jobs=self.n_jobs, fallback_model=sfm.SeasonalNaive(season_length=seasonality)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = sf.forecast(df=df, h=horizon, level=levels)
        name = str(model)
        out = out.sort_values(["unique_id", "ds"])
        med = out[name].to_numpy().reshape(len(histories), horizon)
        quant = []
        for q in QUANTILES:
            if q == 0.5:
                quant.append(med)
                continue
            level = round(100 * abs(1 - 2 * q))
            col = f"{name}-lo-{level}" if q < 0.5 else f"{name}-hi-{level}"
            quant.append(out[col].to_numpy().reshape(len(histories), horizon))
        return med, np.stack(quant)


class Chronos(BenchModel):
    """A Chronos-family model (Chronos-T5, Chronos-Bolt, Chronos-2) through ``chronos-forecasting``.

    Weights come from ``<chronos_dir>/<name>`` (``--chronos-dir`` or ``$CHRONOS_MODEL_DIR``), or from the
    hub where there is network; otherwise the model is reported as not run.
    """

    HUB: ClassVar[dict[str, str]] = {
        "chronos_bolt_tiny": "amazon/chronos-bolt-tiny",
        "chronos_bolt_small": "amazon/chronos-bolt-small",
        "chronos_bolt_base": "amazon/chronos-bolt-base",
        "chronos_t5_small": "amazon/chronos-t5-small",
        "chronos_2": "amazon/chronos-2",
    }

    def __init__(self, name: str, chronos_dir: str | None = None, path: str | None = None, batch_size: int = 256):
        self.name, self.batch_size = name, batch_size
        root = chronos_dir or os.environ.get("CHRONOS_MODEL_DIR")
        self.path = path or (str(Path(root) / name) if root else None)
        self._pipeline = None

    @property
    def pipeline(self):
        if self._pipeline is None:
            from chronos import BaseChronosPipeline

            source = self.path if self.path and Path(self.path).exists() else self.HUB.get(self.name, self.name)
            self._pipeline = BaseChronosPipeline.from_pretrained(source, device_map="cpu")
        return self._pipeline

    def unavailable(self) -> str | None:
        if not hasattr(self, "_reason"):
            self._reason = self._check()
        return self._reason

    def _check(self) -> str | None:
        try:
            import chronos  # noqa: F401
        except ImportError:
            return "chronos-forecasting is not installed (pip install -e '.[bench]')"
        local = self.path is not None and Path(self.path).exists()
        if not local and not _hub_reachable():
            where = f"no folder {self.path}" if self.path else "no --chronos-dir / $CHRONOS_MODEL_DIR"
            return f"weights not found ({where}, and the Hugging Face hub is unreachable)"
        try:
            self.pipeline  # noqa: B018
        except Exception as exc:
            return f"weights not found ({type(exc).__name__}); pass --chronos-dir with a folder '{self.name}'"
        return None

    def forecast_ts(self, histories, horizon, seasonality):
        import torch

        meds, quants = [], []
        for lo in range(0, len(histories), self.batch_size):
            batch = [torch.tensor(h, dtype=torch.float32) for h in histories[lo : lo + self.batch_size]]
            q, _ = self.pipeline.predict_quantiles(batch, prediction_length=horizon, quantile_levels=list(QUANTILES))
            q = torch.stack([t.reshape(horizon, len(QUANTILES)) for t in q]) if isinstance(q, list) else q
            q = np.sort(q.numpy(), axis=-1)  # (B, H, Q); sorted so that quantiles never cross
            quants.append(q.transpose(2, 0, 1))
            meds.append(q[..., list(QUANTILES).index(0.5)])
        return np.concatenate(meds), np.concatenate(quants, axis=1)


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Whether huggingface.co answers at all (its client would otherwise retry for ~30 s)."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


#: Models whose forecasts depend on a seed (DynaMix's noisy sample paths); they run once per seed.
STOCHASTIC = ("dynamix",)


def build_models(
    names: list[str],
    chronos_dir: str | None = None,
    dynamix_model: str | None = None,
    dynamix_samples: int = 100,
    seeds: list[int] | None = None,
) -> list[BenchModel]:
    """Models by benchmark name (``dynamix``, ``parroting``, ``seasonal_naive``, ``auto_ets``, ...).

    ``dynamix_samples`` is the number of DynaMix sample paths behind the quantiles (20 in a quick run).
    ``seeds``: the stochastic models run once per seed; the first keeps the plain name, the others are
    ``<name>#seed<k>``.
    """
    out: list[BenchModel] = []
    seeds = seeds or [0]
    for name in names:
        if name == "dynamix":
            for seed in seeds:
                model = DynaMixBenchModel(dynamix_model or DEFAULT_MODEL, num_samples=dynamix_samples, seed=seed)
                if seed != seeds[0]:
                    model.name = f"{model.name}#seed{seed}"
                out.append(model)
        elif name == "dynamix_nonstationary":  # the pipeline's mode for trending series (Box-Cox + power trend)
            out.append(
                DynaMixBenchModel(dynamix_model or DEFAULT_MODEL, num_samples=dynamix_samples, fit_nonstationary=True)
            )
        elif name == "dynamix_ts":
            out.append(DynaMixTimeSeries(dynamix_model or DEFAULT_MODEL))
        elif name == "naive2":
            out.append(Naive2())
        elif name == "parroting":
            out.append(Parroting())
        elif name == "parroting_best":
            out.append(Parroting(point="best"))
        elif name == "seasonal_naive":
            out.append(SeasonalNaive())
        elif name == "constant_mean":
            out.append(ConstantMean())
        elif name in ("auto_ets", "auto_theta", "auto_arima"):
            kind = {"auto_ets": "AutoETS", "auto_theta": "AutoTheta", "auto_arima": "AutoARIMA"}[name]
            out.append(StatsForecastModel(kind))
        elif name.startswith("chronos"):
            out.append(Chronos(name, chronos_dir))
        else:
            raise ValueError(f"Unknown model {name!r}.")
    return out
