"""DynaMix as an sktime forecaster.

``fit`` keeps the series as the context (and loads the model once per checkpoint and device, shared
by clones); ``predict`` rolls the model out zero-shot. Panels and hierarchies are forecast in one
batched call of the engine, each series from its own end. Probabilistic forecasts come from an
ensemble of DynaMix sample paths.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from .adapter_parameters import check_adapter_parameters, index_seasons, seed_from
from .checkpoint import DEFAULT_MODEL
from .model_cache import ModelSpec, cached_pipeline
from .options import ForecastOptions, check_bool, positive_int
from .pipeline import DynaMixPipeline

__all__ = ["DynaMixForecaster"]


def _instances(y: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    """Split sktime panel/hierarchical data into ``(instance key, single series)`` pairs, in order."""
    if not isinstance(y.index, pd.MultiIndex):
        return [(None, y)]
    levels = list(range(y.index.nlevels - 1))
    group_by = levels[0] if len(levels) == 1 else levels  # a scalar level keeps scalar keys
    return [(key, frame.droplevel(levels)) for key, frame in y.groupby(level=group_by, sort=False)]


def _as_frame(y: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """A univariate Series as a one-column frame (the adapter's one inner layout)."""
    return y.to_frame() if isinstance(y, pd.Series) else y


def _check_spacing(index: pd.Index, name: str) -> Any:
    """The frequency of a series' time index; a clear error where it is irregular."""
    if isinstance(index, pd.PeriodIndex):
        if len(index) > 1:
            steps = np.unique(np.diff(index.asi8))
            if steps.size != 1 or steps[0] != index.freq.n:
                raise ValueError(
                    f"{name} has a PeriodIndex with gaps or repeated periods: DynaMix steps through equally "
                    "spaced observations. Fill the gaps first (e.g. y.resample(y.index.freq).asfreq() and an "
                    "imputer)."
                )
        return index.freq
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
        if freq is None:
            raise ValueError(
                f"{name} has an irregular DatetimeIndex without a frequency: DynaMix steps through equally "
                "spaced observations. Resample it to a regular grid (e.g. y.resample('D').mean() or "
                "y.asfreq('D') with an imputer), or set a frequency with y.index.freq = ..."
            )
        return freq
    if pd.api.types.is_integer_dtype(index) and len(index) > 1:
        steps = np.unique(np.diff(index.to_numpy()))
        if steps.size != 1 or steps[0] != 1:
            raise ValueError(
                f"{name} has an integer index with gaps or a step other than 1 (steps {steps[:5].tolist()}); "
                "DynaMix forecasts one observation per step. Reset the index (y.reset_index(drop=True)) or "
                "use a regular DatetimeIndex/PeriodIndex."
            )
    return None


class DynaMixForecaster(BaseForecaster):
    """Zero-shot forecaster for dynamical systems and time series with a pretrained DynaMix model.

    DynaMix (Hemmer & Durstewitz, NeurIPS 2025) is a mixture of almost-linear RNN experts chosen by
    an attention over the context. ``fit`` stores ``y`` as the context (no training); ``predict``
    rolls the model out ``max(fh)`` steps and returns the requested steps.

    The options are those of :class:`~dynamix_forecasting.options.ForecastOptions`, with the same
    defaults and meaning as everywhere in the package. By default (``mode="auto"``) a univariate ``y`` is
    forecast with the time-series mode for ordinary series: the season (``sp``, else the index
    frequency's usual season, else one estimated from the history) is removed where the history shows it,
    DynaMix forecasts the adjusted series under several preprocessing choices weighted by their errors on
    rolling origins inside the history, and the quantiles, intervals, variance and distribution are
    calibrated on those errors. A multivariate ``y``, or any option of the dynamics mode
    (``preprocessing_method``, ``standardize``, ``fit_nonstationary``, ``noise``), gives the published
    pipeline: point forecasts are the median of ``num_samples`` DynaMix sample paths, which also give the
    quantiles and the distribution.

    Parameters
    ----------
    model : str, path or dict, default "dynamix-3d-alrnn-v1.0"
        Released model name (looked up in ``$DYNAMIX_MODEL_DIR``, then the Hugging Face hub), a
        checkpoint path (``.safetensors`` with its config beside it, or the authors' ``.bson``), or
        an architecture dict such as ``{"M": 8, "N": 3, "Experts": 2, "P": 1}`` for a seeded,
        randomly initialised model (for tests).
    mode : str, default "auto"
        ``"auto"``, ``"time_series"`` (ordinary series, calibrated intervals) or ``"dynamics"`` (the
        published pipeline, for dynamical systems; the embedding options below apply to it).
    sp : int, optional
        Season length (sktime's convention): 12 for monthly data with a yearly season, 24 for hourly
        with a daily one. Default (time-series mode): from the index frequency (hourly 24, daily 7,
        business-daily 5, weekly 52, monthly 12, quarterly 4), else estimated from the history (the fitted
        forecaster reports it in ``season_lengths_``). In the dynamics mode it sets the positional
        embedding's period when given.
    preprocessing_method : str, optional
        Dynamics mode: how a series with fewer channels than the model's ``N`` is embedded:
        ``"pos_embedding"`` (default), ``"delay_embedding"``, ``"delay_embedding_random"`` or ``"zero_embedding"``.
    standardize : bool, optional
        Dynamics mode: standardize each channel with the context's mean and standard deviation (default True).
    fit_nonstationary : bool, optional
        Dynamics mode: Box-Cox transform and power-law detrend each channel first (default False).
    num_samples : int, default 100
        Sample paths behind ``predict_proba`` and ``predict_var`` (both modes) and behind the dynamics mode's
        point forecast and quantiles; the time-series mode's quantiles are those of its calibrated
        distribution itself.
    context_length : int, optional
        Use at most the last ``context_length`` points of each series as the context.
    noise : bool, optional
        Dynamics mode: the published gating noise (default True; False: deterministic paths).
    divergence_guard : float, optional
        Bound the latent state at this multiple of the context's largest standardized value so that a
        diverging forecast stays finite (the time-series mode uses 10 unless given).
    batch_size : int, optional
        Roll out at most this many series x samples at a time (bounds memory).
    device : str, default "cpu"
        Torch device of the model, e.g. ``"cuda"``.
    exogenous : bool, default False
        Use the past values of ``X`` as extra context channels: ``y`` and ``X`` are forecast jointly as one
        system by the dynamics mode (at most the model's ``N`` channels in all) and ``y``'s forecast is returned;
        ``X``'s future values are not needed. Off by default: on sktime's three datasets with ``X`` it was worse
        than the same mode without ``X`` on all three (see ``docs/sktime.md``).
    random_state : int, numpy RandomState or None
        Seed of the noise and of the draws (None: seed 0, the package's default seed), so ``predict``,
        ``predict_quantiles``, ``predict_interval`` and ``predict_proba`` are reproducible and agree with
        each other. torch's global random state is never touched.

    Notes
    -----
    Series with more channels than the model's ``N`` are forecast channel by channel by the engine.
    Exogenous ``X`` is not used. Sample ``k`` of every series uses the same noise stream, so a
    series gets the same forecast alone or within a panel.

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from dynamix_forecasting.sktime import DynaMixForecaster
    >>> y = load_airline()
    >>> forecaster = DynaMixForecaster(  # a tiny random model here; use the default model in practice
    ...     model={"M": 8, "N": 3, "Experts": 2, "P": 1}, num_samples=10, random_state=0
    ... )
    >>> forecaster.fit(y)
    DynaMixForecaster(...)
    >>> y_pred = forecaster.predict(fh=[1, 2, 3])
    >>> len(y_pred)
    3
    >>> intervals = forecaster.predict_interval(fh=[1, 2, 3], coverage=0.8)
    """

    _tags: ClassVar[dict[str, Any]] = {
        "authors": ["dynamix-forecasting developers"],
        "maintainers": ["dynamix-forecasting developers"],
        "python_dependencies": ["torch", "numba", "safetensors", "huggingface-hub", "scipy"],
        "y_inner_mtype": ["pd.Series", "pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "capability:multivariate": True,
        "capability:exogenous": False,
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:missing_values": False,
        "capability:unequal_length": True,
        "capability:update": True,
        "capability:random_state": True,
        "property:randomness": "derandomized",
        "requires-fh-in-fit": False,
        "X-y-must-have-same-index": False,
        "enforce_index_type": None,
        "fit_is_empty": False,
    }
    # The context is kept in ``_cur_y`` (what ``update`` extends); the base class need not store data.
    _config: ClassVar[dict[str, Any]] = {"remember_data": False}

    def __init__(
        self,
        model: ModelSpec = DEFAULT_MODEL,
        mode: str = "auto",
        sp: int | None = None,
        preprocessing_method: str | None = None,
        standardize: bool | None = None,
        fit_nonstationary: bool | None = None,
        num_samples: int = 100,
        context_length: int | None = None,
        noise: bool | None = None,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = None,
        exogenous: bool = False,
    ) -> None:
        self.model = model
        self.mode = mode
        self.sp = sp
        self.preprocessing_method = preprocessing_method
        self.standardize = standardize
        self.fit_nonstationary = fit_nonstationary
        self.num_samples = num_samples
        self.context_length = context_length
        self.noise = noise
        self.divergence_guard = divergence_guard
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.exogenous = exogenous
        super().__init__()
        if exogenous is True:  # sktime then passes X to fit, update and predict
            self.set_tags(**{"capability:exogenous": True})
        # Present even with remember_data=False, so switching the config on later works as usual.
        self._y, self._X = None, None

    # ------------------------------------------------------------------ checks and state

    @property
    def _pipeline(self) -> DynaMixPipeline:
        return cached_pipeline(self.model, self.device)

    def _contexts(self) -> list[tuple[Any, pd.DataFrame]]:
        pieces = _instances(self._cur_y)
        if self.context_length is not None:
            pieces = [(key, frame.iloc[-self.context_length :]) for key, frame in pieces]
        return pieces

    def _fit(self, y: pd.DataFrame, X: pd.DataFrame | None = None, fh: ForecastingHorizon | None = None):
        """Check the parameters, load the model and keep ``y`` as the context."""
        check_adapter_parameters(self.model, self.random_state)
        if self.sp is not None:
            positive_int("sp", self.sp)
        options = ForecastOptions(
            mode=self.mode,  # type: ignore[arg-type]  # checked by ForecastOptions
            preprocessing_method=self.preprocessing_method,  # type: ignore[arg-type]
            context_length=self.context_length,
            standardize=self.standardize,
            fit_nonstationary=self.fit_nonstationary,
            num_samples=self.num_samples,
            seed=seed_from(self.random_state),
            noise=self.noise,
            divergence_guard=self.divergence_guard,
            batch_size=self.batch_size,
        )
        self._is_series = isinstance(y, pd.Series)
        self._series_name = y.name if isinstance(y, pd.Series) else None
        self._target_columns = _as_frame(y).columns
        self._cur_y = self._with_exogenous(_as_frame(y), X)
        if self._cur_y.shape[1] > len(self._target_columns) and options.mode == "time_series":
            raise ValueError(
                "exogenous=True forecasts y and X as channels of one system (the dynamics mode); it cannot be "
                "combined with mode='time_series', which forecasts each channel on its own."
            )
        self._options = options.resolve(self._cur_y.shape[1])
        self._validate_context()  # loads (or finds) the model, so a missing checkpoint fails in fit
        return self

    def _with_exogenous(self, y: pd.DataFrame, X: pd.DataFrame | None) -> pd.DataFrame:
        """``y``, and with ``exogenous=True`` the past values of ``X`` as extra context channels."""
        check_bool("exogenous", self.exogenous)
        if not self.exogenous:
            return y
        if X is None:
            raise ValueError("exogenous=True uses X as extra context channels; pass X to fit and update.")
        X = _as_frame(X)
        if not X.index.equals(y.index):
            raise ValueError("exogenous=True needs X on the same index as y (its past values at y's time points).")
        n_model = self._pipeline.model.N
        if y.shape[1] + X.shape[1] > n_model:
            raise ValueError(
                f"exogenous=True forecasts y and X jointly as one system of at most the model's N = {n_model} "
                f"channels; y has {y.shape[1]} and X {X.shape[1]}. Select at most {n_model - y.shape[1]} "
                "column(s) of X first (e.g. sktime's ColumnSelect in a ForecastingPipeline)."
            )
        if not np.isfinite(X.to_numpy(dtype=np.float64)).all():
            raise ValueError("X contains NaN or infinite values; fill them first (e.g. with an Imputer).")
        return pd.concat([y, X.set_axis([f"__exogenous_{c}" for c in X.columns], axis=1)], axis=1)

    def _validate_context(self) -> None:
        need = self._pipeline.min_context_length(self._cur_y.shape[1], self._options)
        for key, frame in self._contexts():
            name = "y" if key is None else f"series {key!r} of y"
            _check_spacing(frame.index, name)
            if len(frame) < need:
                raise ValueError(
                    f"{name} has {len(frame)} time points; DynaMix in mode={self._options.mode!r} needs at least "
                    f"{need}. Pass a longer series"
                    + (" or a larger context_length." if self.context_length is not None else ".")
                )

    def _update(self, y: pd.DataFrame, X: pd.DataFrame | None = None, update_params: bool = True):
        """Extend the context with new observations (no refit, nothing to re-learn)."""
        old, y = self._cur_y, self._with_exogenous(_as_frame(y), X)
        kept = old.loc[~old.index.isin(y.index)]
        self._cur_y = pd.concat([kept, y]).sort_index() if len(kept) < len(old) else pd.concat([old, y])
        self._validate_context()
        return self

    # ------------------------------------------------------------------ forecasting

    def _cutoff_of(self, frame: pd.DataFrame) -> pd.Index:
        cut = frame.index[-1:]
        if isinstance(cut, pd.DatetimeIndex) and cut.freq is None:
            cut = pd.DatetimeIndex(cut, freq=_check_spacing(frame.index, "y"))
        return cut

    def _plan(self, fh: ForecastingHorizon) -> list[tuple[Any, pd.Index, np.ndarray]]:
        """Per series: its key, the absolute index of the forecast and the (1-based) steps to take."""
        plan = []
        for key, frame in self._contexts():
            cutoff = self._cutoff_of(frame)
            steps = np.asarray(fh.to_relative(cutoff), dtype=np.int64)
            if steps.min() < 1:
                raise NotImplementedError(
                    "DynaMixForecaster makes no in-sample predictions; fh must lie after the end of each series "
                    f"(got relative steps {steps.tolist()})."
                )
            try:
                index = fh.to_absolute_index(cutoff)
            except (pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta, OverflowError) as exc:
                raise ValueError(
                    f"fh reaches {int(steps.max())} steps past the cutoff {cutoff}, beyond the dates pandas can "
                    f"represent ({exc}); pass a shorter forecasting horizon."
                ) from exc
            plan.append((key, index, steps))
        return plan

    def _call(
        self, fh: ForecastingHorizon
    ) -> tuple[list[tuple[Any, pd.Index, np.ndarray]], list[np.ndarray], int, ForecastOptions]:
        """The plan, the contexts, the horizon and the options of one forecast of every series."""
        plan = self._plan(fh)
        horizon = int(max(steps.max() for _, _, steps in plan))
        pieces = self._contexts()
        contexts = [frame.to_numpy(dtype=np.float64) for _, frame in pieces]
        freqs = [_check_spacing(frame.index, "y") for _, frame in pieces]
        options = self._options.replace(season_length=index_seasons(self.sp, self._options, freqs))
        return plan, contexts, horizon, options

    @property
    def season_lengths_(self) -> list[int | None]:
        """The season each series is forecast with (time-series mode: given, from the index, or estimated from
        the history; 1 where none was found). None in the dynamics mode without ``sp``."""
        self.check_is_fitted()
        _, contexts, _, options = self._call(ForecastingHorizon([1], is_relative=True))
        if options.mode != "time_series":
            return [self.sp] * len(contexts) if self.sp is not None else [None] * len(contexts)
        return [int(s) for s in self._pipeline.season_lengths(contexts, options)]

    def _quantiles(self, fh: ForecastingHorizon, levels: list[float]):
        """The plan, ``(H, S, F, Q)`` quantiles and ``(H, S, F)`` point forecasts."""
        plan, contexts, horizon, options = self._call(fh)
        q, point = self._pipeline.predict_quantiles(contexts, horizon, levels, options)
        return plan, np.asarray(q), np.asarray(point)

    def _paths(self, fh: ForecastingHorizon) -> tuple[list[tuple[Any, pd.Index, np.ndarray]], np.ndarray]:
        """The plan and ``(K, H, S, F)`` sample paths (dynamics) or calibrated draws (time series)."""
        plan, contexts, horizon, options = self._call(fh)
        return plan, self._pipeline.sample_paths(contexts, horizon, options)

    def _at_steps(self, plan, per_step: np.ndarray) -> list[np.ndarray]:
        """Each series' requested steps of its target channels from an ``(H, S, F, ...)`` array."""
        n = len(self._target_columns)
        return [per_step[steps - 1, s, :n] for s, (_, _, steps) in enumerate(plan)]

    def _frame(self, plan, values: list[np.ndarray], columns: pd.Index) -> pd.DataFrame:
        """Assemble per-series ``(len(fh), C)`` blocks into one frame indexed like ``y``."""
        frames = []
        for (key, index, _), block in zip(plan, values, strict=True):
            if key is not None:
                keys = key if isinstance(key, tuple) else (key,)
                index = pd.MultiIndex.from_tuples([(*keys, t) for t in index], names=self._cur_y.index.names)
            else:
                index = index.rename(self._cur_y.index.name)
            frames.append(pd.DataFrame(block, index=index, columns=columns))
        return pd.concat(frames) if len(frames) > 1 else frames[0]

    def _predict(self, fh: ForecastingHorizon, X: pd.DataFrame | None = None) -> pd.DataFrame | pd.Series:
        """The point forecast at the requested steps (the pipeline's, in either mode)."""
        plan, _, point = self._quantiles(fh, [0.5])
        out = self._frame(plan, self._at_steps(plan, point), self._target_columns)
        return out.iloc[:, 0].rename(self._series_name) if self._is_series else out

    def _predict_quantiles(self, fh: ForecastingHorizon, X: pd.DataFrame | None, alpha: list[float]) -> pd.DataFrame:
        """Calibrated quantiles (time series) or empirical quantiles of the sample paths (dynamics)."""
        plan, q, _ = self._quantiles(fh, list(alpha))
        values = [block.reshape(block.shape[0], -1) for block in self._at_steps(plan, q)]  # columns (var, alpha)
        columns = pd.MultiIndex.from_product([self._get_varnames(), alpha])
        return self._frame(plan, values, columns)

    def _predict_var(self, fh: ForecastingHorizon, X: pd.DataFrame | None = None, cov: bool = False) -> pd.DataFrame:
        """Variance of the ``num_samples`` paths that ``predict_proba`` returns (marginal; no ``cov=True``)."""
        if cov:
            raise NotImplementedError("DynaMixForecaster returns marginal variances only; use cov=False.")
        plan, paths = self._paths(fh)
        return self._frame(plan, self._at_steps(plan, paths.var(axis=0)), self._target_columns)

    def _predict_proba(self, fh: ForecastingHorizon, X: pd.DataFrame | None = None, marginal: bool = True):
        """The sample paths (dynamics) or ``num_samples`` calibrated draws (time series) as an skpro
        ``Empirical`` distribution."""
        from skpro.distributions.empirical import Empirical

        plan, paths = self._paths(fh)
        samples = [self._frame(plan, self._at_steps(plan, path), self._get_varnames()) for path in paths]
        spl = pd.concat(samples, keys=range(paths.shape[0]), names=["sample"])
        return Empirical(spl, time_indep=marginal)

    # ------------------------------------------------------------------ tests

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Parameter sets for sktime's conformance tests: tiny random models, offline and fast.

        Parameters
        ----------
        parameter_set : str, default "default"
            Name of the set (only ``"default"``).

        Returns
        -------
        list of dict
        """
        return [
            {"model": {"M": 8, "N": 3, "Experts": 2, "P": 1}, "num_samples": 5, "random_state": 0},
            {
                "model": {"M": 6, "N": 1, "Experts": 3, "P": 2},
                "mode": "dynamics",
                "preprocessing_method": "zero_embedding",
                "num_samples": 3,
                "context_length": 40,
                "random_state": 1,
            },
        ]
