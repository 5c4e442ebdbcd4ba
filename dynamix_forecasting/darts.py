"""DynaMix as a darts forecasting model.

``DynaMixModel`` is a :class:`darts.models.forecasting.forecasting_model.GlobalForecastingModel` with
its own inference path rather than darts' ``FoundationModel``/``TorchForecastingModel`` route: that
route needs PyTorch Lightning and chunked re-feeding of ``output_chunk_length`` windows, while DynaMix
rolls out natively for any ``n`` and has nothing to train. ``fit`` only checks the series and loads
the model (shared per checkpoint and device), and nothing requires it; ``predict`` forecasts all series in
one batched engine call; ``historical_forecasts`` and ``backtest`` put every window into one batched rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from darts import TimeSeries
from darts.models.forecasting.forecasting_model import GlobalForecastingModel
from darts.utils.serialization import add_safe_globals

try:  # the one private darts helper used: which windows historical_forecasts asks for (start, stride, ...)
    from darts.utils.historical_forecasts.optimized_historical_forecasts_torch import _create_dataset_bounds
except ImportError:  # pragma: no cover - a darts release that moved it: darts' own per-window loop is used
    _create_dataset_bounds = None

from .adapter_parameters import check_adapter_parameters, index_seasons, seed_from
from .checkpoint import DEFAULT_MODEL
from .darts_series import as_list, check_covariates, joint_values
from .model_cache import ModelSpec, cached_pipeline
from .options import DEFAULT_QUANTILE_SAMPLES, ForecastOptions, check_bool, positive_int
from .pipeline import DynaMixPipeline

__all__ = ["DynaMixModel"]


class DynaMixModel(GlobalForecastingModel):
    """Zero-shot forecasting with a pretrained DynaMix model (Hemmer & Durstewitz, NeurIPS 2025).

    ``fit(series)`` checks the series and loads the model; nothing is trained. ``predict(n)`` rolls the
    model out ``n`` steps from the end of each series (any ``n``, multivariate series, one or many
    series). The options are those of :class:`~dynamix_forecasting.options.ForecastOptions`, with the
    same defaults and meaning as everywhere in the package: ``mode="auto"`` forecasts a univariate series
    with the time-series mode and a multivariate one (or any dynamics-mode option) with the published
    pipeline. ``predict(n)`` is deterministic: the time-series mode's point forecast, or in the dynamics
    mode the median of ``num_point_samples`` sample paths (as darts' foundation models and sktime's
    adapter do). With ``num_samples > 1`` the result holds samples: calibrated draws (time series) or
    real DynaMix sample paths (dynamics: whole trajectories with independent gating noise).

    Parameters
    ----------
    model : str, path or dict, default "dynamix-3d-alrnn-v1.0"
        Released model name (looked up in ``$DYNAMIX_MODEL_DIR``, then the Hugging Face hub), a
        checkpoint path, or an architecture dict (e.g. ``{"M": 8, "N": 3, "Experts": 2, "P": 1}``) for
        a seeded randomly initialised model.
    mode : str, default "auto"
        ``"auto"``, ``"time_series"`` (seasonal adjustment with the season from ``season_length``, the
        series' frequency or the history, candidates weighted on rolling origins inside the history,
        calibrated samples) or ``"dynamics"`` (the published pipeline; the embedding options below).
    season_length : int, optional
        The season; default from the series' frequency (hourly 24, daily 7, monthly 12, quarterly 4, ...),
        else (time-series mode) estimated from the history.
    preprocessing_method : str, optional
        Dynamics mode: embedding of series with fewer components than the model's ``N``: ``"pos_embedding"``
        (default), ``"delay_embedding"``, ``"delay_embedding_random"`` or ``"zero_embedding"``.
    standardize : bool, optional
        Dynamics mode: standardize each component with the context's mean and standard deviation (default True).
    fit_nonstationary : bool, optional
        Dynamics mode: Box-Cox transform and power-law detrend each component first (default False).
    context_length : int, optional
        Use at most the last ``context_length`` points of each series as the context.
    num_point_samples : int, optional
        Dynamics mode: the sample paths whose median is the point forecast of ``predict(n)`` (with
        ``num_samples=1``; default 100), as sktime's ``DynaMixForecaster`` computes it. Refused in the
        time-series mode, whose point forecast is not a median of paths.
    noise : bool, optional
        Dynamics mode: the published gating noise (default True).
    divergence_guard : float, optional
        Bound a diverging latent state at this multiple of the context's largest standardized value.
    batch_size : int, optional
        Roll out at most this many series x samples at a time (bounds memory).
    device : str, default "cpu"
        Torch device of the model.
    exogenous : bool, default False
        Use ``past_covariates`` (in ``fit`` and ``predict``) as extra context channels: the series and its
        covariates are forecast jointly as one system by the dynamics mode (at most the model's ``N`` channels)
        and the series' components are returned; future values of the covariates are not needed. See
        ``docs/sktime.md`` for when it helps (on three datasets it did not).
    random_state : int, optional
        Seed of the noise and of the samples; ``predict(..., random_state=...)`` overrides it per call.
        Without either, seed 0 is used, so forecasts are deterministic.

    Notes
    -----
    Covariates are refused (the model takes none); static covariates are kept on the output but not
    used. Save with ``model.save(path)`` and load with ``DynaMixModel.load(path)``: importing this
    module registers the class with darts' safe loader.

    Examples
    --------
    >>> from darts.utils.timeseries_generation import sine_timeseries
    >>> from dynamix_forecasting.darts import DynaMixModel
    >>> series = sine_timeseries(length=200, value_frequency=0.05)
    >>> model = DynaMixModel(model={"M": 8, "N": 3, "Experts": 2, "P": 1}, random_state=0)  # tiny, for the example
    >>> forecast = model.fit(series).predict(12, num_samples=20)
    >>> forecast.n_timesteps, forecast.n_samples
    (12, 20)
    """

    def __init__(
        self,
        model: ModelSpec = DEFAULT_MODEL,
        mode: str = "auto",
        season_length: int | None = None,
        preprocessing_method: str | None = None,
        standardize: bool | None = None,
        fit_nonstationary: bool | None = None,
        context_length: int | None = None,
        num_point_samples: int | None = None,
        noise: bool | None = None,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        device: str = "cpu",
        random_state: int | None = None,
        exogenous: bool = False,
    ) -> None:
        super().__init__(add_encoders=None)
        check_adapter_parameters(model, random_state)
        # Checked here (darts validates in the constructor); kept as the one options object of every call.
        self._options = ForecastOptions(
            mode=mode,  # type: ignore[arg-type]  # checked by ForecastOptions
            season_length=season_length,
            preprocessing_method=preprocessing_method,  # type: ignore[arg-type]
            context_length=context_length,
            standardize=standardize,
            fit_nonstationary=fit_nonstationary,
            noise=noise,
            divergence_guard=divergence_guard,
            batch_size=batch_size,
        )
        if num_point_samples is not None:
            positive_int("num_point_samples", num_point_samples)
        self.model = model
        self.mode = mode
        self.season_length = season_length
        self.num_point_samples = num_point_samples
        self.noise = noise
        self.divergence_guard = divergence_guard
        self.batch_size = batch_size
        self.preprocessing_method = preprocessing_method
        self.standardize = standardize
        self.fit_nonstationary = fit_nonstationary
        self.context_length = context_length
        self.device = device
        self.random_state = random_state
        self.exogenous = check_bool("exogenous", exogenous)

    # ------------------------------------------------------------------ darts' model description
    @property
    def _pipeline(self) -> DynaMixPipeline:
        return cached_pipeline(self.model, self.device)

    @property
    def supports_multivariate(self) -> bool:
        return True

    @property
    def supports_probabilistic_prediction(self) -> bool:
        return True

    @property
    def supports_transferable_series_prediction(self) -> bool:
        return True

    @property
    def supports_past_covariates(self) -> bool:
        return self.exogenous

    @property
    def supports_future_covariates(self) -> bool:
        return False

    @property
    def supports_static_covariates(self) -> bool:
        return False

    @property
    def supports_sample_weight(self) -> bool:
        return False

    @property
    def _requires_training(self) -> bool:
        return False

    @property
    def min_train_samples(self) -> int:
        return 1

    def _resolved(self, n_components: int) -> ForecastOptions:
        options = self._options.resolve(n_components)
        if options.mode == "time_series" and self.num_point_samples is not None:
            raise ValueError(
                "num_point_samples belongs to mode='dynamics' (its point forecast is a median of sample paths); "
                "the time-series mode's point forecast is not. Drop it, or use mode='dynamics'."
            )
        return options

    @property
    def _min_context(self) -> int:
        # darts asks for one length for all series: that of a univariate series, the strictest case.
        return self._pipeline.min_context_length(1, self._options)

    @property
    def _target_window_lengths(self) -> tuple[int, int]:
        return self._min_context, 0

    @property
    def extreme_lags(self) -> tuple[int | None, int | None, None, None, None, None, int]:
        # The model reads the whole past (at least _min_context points) and needs no future values.
        return -self._min_context, -1, None, None, None, None, 0

    @property
    def _model_encoder_settings(self) -> tuple[None, None, bool, bool, None, None]:
        return None, None, False, False, None, None

    # ------------------------------------------------------------------ fit / predict

    def _check_series(self, series: list[TimeSeries]) -> None:
        n_components = series[0].n_components
        need = self._min_context
        for i, s in enumerate(series):
            name = "series" if len(series) == 1 else f"series {i}"
            if s.n_components != n_components:
                raise ValueError(
                    f"All series must have the same number of components; {name} has {s.n_components}, "
                    f"the first has {n_components}."
                )
            if s.n_samples != 1:
                raise ValueError(f"{name} is stochastic ({s.n_samples} samples); pass a deterministic series.")
            values = s.values(copy=False)
            if not np.isfinite(values).all():
                raise ValueError(
                    f"{name} contains NaN or infinite values; fill them first, e.g. with "
                    "darts.dataprocessing.transformers.MissingValuesFiller or series.fill_missing...()."
                )
            if len(s) < need:
                raise ValueError(
                    f"{name} has {len(s)} time steps; DynaMix in mode={self._resolved(n_components).mode!r} needs "
                    f"at least {need}. Pass a longer series."
                )

    def fit(
        self,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        verbose: bool | None = None,
    ) -> DynaMixModel:
        """Check the series and load the model (nothing is trained).

        Parameters
        ----------
        series : TimeSeries or list of TimeSeries
            The series to forecast later (kept when it is a single series, as darts does).
        past_covariates : TimeSeries or list of TimeSeries, optional
            With ``exogenous=True``: extra context channels covering each series' time span.
        future_covariates : None
            Not supported; passing them raises a ``ValueError``.
        verbose : bool, optional
            Unused.

        Returns
        -------
        DynaMixModel
            The fitted model.
        """
        series_list, single = as_list(series, "series")
        covariates = check_covariates(self.exogenous, series_list, past_covariates, future_covariates)
        self._pipeline  # noqa: B018  # loads (and checks) the model now, so a bad `model=` fails in fit
        self._check_series(series_list)
        self._resolved(series_list[0].n_components + (covariates[0].n_components if covariates else 0))
        self._fit_covariates = covariates[0] if covariates and single else None
        super().fit(series)
        return self

    def _seed(self, random_state: int | None) -> int:
        return seed_from(self.random_state if random_state is None else random_state)

    def _contexts(self, values: list[np.ndarray]) -> list[np.ndarray]:
        """Float64 ``(T, C)`` contexts, cut to the last ``context_length`` points."""
        cut = -self.context_length if self.context_length is not None else None
        return [np.asarray(v[cut:] if cut else v, dtype=np.float64) for v in values]

    def _rollout(
        self,
        contexts: list[np.ndarray],
        n: int,
        num_samples: int,
        seed: int,
        verbose: bool,
        freqs: list[Any] | None = None,
    ) -> np.ndarray:
        """``(S, n, C, K)`` forecasts of all contexts in one batched engine call: the point forecast for
        ``num_samples == 1``, else samples."""
        options = self._resolved(contexts[0].shape[1])
        options = options.replace(
            season_length=index_seasons(self.season_length, options, freqs or [None] * len(contexts)),
            seed=seed,
            progress=bool(verbose),
        )
        if num_samples == 1:
            points = self.num_point_samples or DEFAULT_QUANTILE_SAMPLES
            _, point = self._pipeline.predict_quantiles(
                contexts, n, [0.5], options.replace(num_samples=points if options.mode == "dynamics" else None)
            )
            paths = np.asarray(point)[None]
        else:
            paths = self._pipeline.sample_paths(contexts, n, options.replace(num_samples=num_samples))
        return paths.transpose(2, 1, 3, 0)  # (K, n, S, C) -> (S, n, C, K)

    def predict(
        self,
        n: int,
        series: TimeSeries | Sequence[TimeSeries] | None = None,
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        num_samples: int = 1,
        verbose: bool | None = None,
        predict_likelihood_parameters: bool = False,
        show_warnings: bool = True,
        random_state: int | None = None,
        **kwargs: Any,
    ) -> TimeSeries | list[TimeSeries]:
        """Forecast ``n`` steps after the end of each series.

        Parameters
        ----------
        n : int
            Forecast horizon (any length: the model rolls out natively).
        series : TimeSeries or list of TimeSeries, optional
            Series to forecast; default the single series given to ``fit``.
        past_covariates : TimeSeries or list of TimeSeries, optional
            With ``exogenous=True``: extra context channels (default: those given to ``fit`` for its single series).
        future_covariates : None
            Not supported.
        num_samples : int, default 1
            Number of DynaMix sample paths.
        verbose : bool, optional
            Show a progress bar over the rollout.
        predict_likelihood_parameters : bool, default False
            Not supported (DynaMix has no likelihood parameters).
        show_warnings : bool, default True
            Unused.
        random_state : int, optional
            Seed for this call (overrides the constructor's ``random_state``; default seed 0).

        Returns
        -------
        TimeSeries or list of TimeSeries
            One forecast per input series, with ``num_samples`` samples, in the input's dtype.
        """
        if predict_likelihood_parameters:
            raise ValueError("DynaMixModel has no likelihood parameters to predict; use num_samples for quantiles.")
        if series is None:
            if self.training_series is None:
                raise ValueError("The model was fit on several series (or not at all): pass `series` to predict().")
            series = self.training_series
            past_covariates = past_covariates if past_covariates is not None else getattr(self, "_fit_covariates", None)
        series_list, single = as_list(series, "series")
        covariates = check_covariates(self.exogenous, series_list, past_covariates, future_covariates)
        positive_int("n", n)
        positive_int("num_samples", num_samples)
        if not self._fit_called:  # nothing to train: fitting only checks the series and loads the model
            self.fit(series)
        super().predict(n, series, num_samples=num_samples, verbose=verbose, show_warnings=show_warnings)
        self._check_series(series_list)
        paths = self._rollout(
            self._contexts(joint_values(series_list, covariates)),
            int(n),
            int(num_samples),
            self._seed(random_state),
            bool(verbose),
            [s.freq for s in series_list],
        )
        forecasts = [  # the series' own components (covariates were extra context channels)
            self._build_forecast_series(paths[i][:, : s.n_components].astype(s.dtype, copy=False), input_series=s)
            for i, s in enumerate(series_list)
        ]
        return forecasts[0] if single else forecasts

    # ------------------------------------------------------------------ batched historical forecasts
    def historical_forecasts(  # type: ignore[override]
        self,
        series: TimeSeries | Sequence[TimeSeries],
        *args: Any,
        retrain: Any = True,
        train_length: int | None = None,
        data_transformers: Any = None,
        **kwargs: Any,
    ) -> Any:
        """darts' ``historical_forecasts``, where ``retrain`` changes nothing: fitting DynaMix only takes the
        context, so with ``retrain=True`` (the default), an ``int`` or a callable the windows take the batched path
        of ``retrain=False`` (the same numbers). ``train_length`` and ``data_transformers`` keep darts' loop."""
        if retrain is not False and train_length is None and not data_transformers:
            retrain = False
        if not self._fit_called:  # nothing to train: fitting only checks the series and loads the model
            self.fit(series)
        return super().historical_forecasts(
            series, *args, retrain=retrain, train_length=train_length, data_transformers=data_transformers, **kwargs
        )

    def _check_optimizable_historical_forecasts(self, retrain: Any) -> bool:
        # Without retraining every window is a plain forecast from its past: batch them all (when darts'
        # window bookkeeping is available; otherwise darts forecasts window by window, same results).
        if _create_dataset_bounds is None:
            return False
        return retrain is False or (isinstance(retrain, int) and not isinstance(retrain, bool) and retrain == 0)

    def _optimized_historical_forecasts(
        self,
        series: Sequence[TimeSeries],
        past_covariates: Sequence[TimeSeries] | None = None,
        future_covariates: Sequence[TimeSeries] | None = None,
        num_samples: int = 1,
        start: pd.Timestamp | float | int | Literal["end"] | None = None,
        start_format: Literal["position", "value"] = "value",
        forecast_horizon: int = 1,
        stride: int = 1,
        overlap_end: bool = False,
        last_points_only: bool = True,
        verbose: bool = False,
        show_warnings: bool = True,
        predict_likelihood_parameters: bool = False,
        random_state: int | None = None,
        predict_kwargs: dict[str, Any] | None = None,
    ) -> list[TimeSeries] | list[list[TimeSeries]]:
        """All windows of all series as one batched rollout (called by ``historical_forecasts``)."""
        check_covariates(False, list(series), past_covariates, future_covariates)
        if predict_likelihood_parameters:
            raise ValueError("DynaMixModel has no likelihood parameters to predict.")
        series = list(series)
        self._check_series(series)
        # darts' own bookkeeping decides which prediction start points exist (start, stride, overlap_end).
        bounds, _ = _create_dataset_bounds(
            model=self,
            series=series,
            start=start,
            start_format=start_format,
            forecast_horizon=forecast_horizon,
            stride=stride,
            overlap_end=overlap_end,
            show_warnings=show_warnings,
        )
        starts = [list(range(int(lo), int(hi) + 1, stride)) for lo, hi in bounds]
        # Windows are cut from the values array (slicing TimeSeries objects costs more than the rollout).
        values = [s.values(copy=False) for s in series]
        flat = [v[: int(p)] for v, points in zip(values, starts, strict=True) for p in points]
        if not flat:
            return [[] for _ in series]
        seed = self._seed(random_state if random_state is not None else (predict_kwargs or {}).get("random_state"))
        freqs = [s.freq for s, points in zip(series, starts, strict=True) for _ in points]
        paths = self._rollout(self._contexts(flat), forecast_horizon, num_samples, seed, verbose, freqs)  # (W,H,C,K)
        out, w = [], 0
        for s, points in zip(series, starts, strict=True):
            block = paths[w : w + len(points)].astype(s.dtype, copy=False)
            w += len(points)
            # One time index covering every window, sliced per window below.
            last = points[-1] + forecast_horizon
            future = max(0, last - len(s))
            times = s.time_index
            if future:
                times = times.append(
                    pd.RangeIndex(times[-1] + s.freq, times[-1] + (future + 1) * s.freq, s.freq)
                    if s.has_range_index
                    else pd.date_range(times[-1] + s.freq, periods=future, freq=s.freq)
                )
            kept = dict(components=s.components, static_covariates=s.static_covariates, hierarchy=s.hierarchy)
            if last_points_only:
                # Step `forecast_horizon` of each window: every `stride` steps from the first one.
                ends = np.asarray(points) + forecast_horizon - 1
                out.append(TimeSeries(times[ends], block[:, -1], freq=s.freq * stride, copy=False, **kept))
            else:
                out.append(
                    [
                        TimeSeries(times[p : p + forecast_horizon], block[j], copy=False, **kept)
                        for j, p in enumerate(points)
                    ]
                )
        return out


# darts loads models with a restricted unpickler; allow this class (its state is plain values).
add_safe_globals([DynaMixModel, ForecastOptions])
