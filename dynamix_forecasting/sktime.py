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

from .adapter_parameters import check_adapter_parameters, check_mode, season_length_from_freq, seed_from
from .checkpoint import DEFAULT_MODEL
from .inputs import positive_int
from .model_cache import ModelSpec, cached_pipeline
from .pipeline import TS_MIN_HISTORY, DynaMixPipeline

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

    By default (``mode="time_series"``) it uses the engine's time-series mode for ordinary series: the
    season (``sp``, or the index frequency's usual season) is removed where the history shows it,
    DynaMix forecasts the adjusted series under several preprocessing choices weighted by their errors on
    rolling origins inside the history, and the quantiles, intervals, variance and distribution are
    calibrated on those errors. ``mode="dynamics"`` gives the published pipeline: point forecasts are the
    median of ``num_samples`` DynaMix sample paths, which also give the quantiles and the distribution.

    Parameters
    ----------
    model : str, path or dict, default "dynamix-3d-alrnn-v1.0"
        Released model name (looked up in ``$DYNAMIX_MODEL_DIR``, then the Hugging Face hub), a
        checkpoint path (``.safetensors`` with its config beside it, or the authors' ``.bson``), or
        an architecture dict such as ``{"M": 8, "N": 3, "Experts": 2, "P": 1}`` for a seeded,
        randomly initialised model (for tests).
    mode : str, default "time_series"
        ``"time_series"`` (ordinary series, calibrated intervals) or ``"dynamics"`` (the published
        pipeline, for dynamical systems; the embedding options below apply to it).
    sp : int, optional
        Season length (sktime's convention): 12 for monthly data with a yearly season, 24 for hourly
        with a daily one. Default: from the index frequency (hourly 24, daily 7, business-daily 5,
        weekly 52, monthly 12, quarterly 4, else 1). In the dynamics mode it sets the positional
        embedding's period when given.
    preprocessing_method : str, default "pos_embedding"
        How a series with fewer channels than the model's ``N`` is embedded: ``"pos_embedding"``,
        ``"delay_embedding"``, ``"delay_embedding_random"`` or ``"zero_embedding"``.
    standardize : bool, default True
        Standardize each channel with the context's mean and standard deviation.
    fit_nonstationary : bool, default False
        Box-Cox transform and power-law detrend each channel first (for trending series).
    num_samples : int, default 100
        Dynamics mode: number of DynaMix sample paths (ensemble size); 1 gives a single trajectory and
        zero-width intervals. Time-series mode: draws of ``predict_proba``'s empirical distribution.
    context_length : int, optional
        Use at most the last ``context_length`` points of each series as the context.
    noise : bool, default True
        Dynamics mode: the published gating noise (False: deterministic paths).
    divergence_guard : float, optional
        Bound the latent state at this multiple of the context's largest standardized value so that a
        diverging forecast stays finite (the time-series mode uses 10 unless given).
    batch_size : int, optional
        Roll out at most this many series x samples at a time (bounds memory).
    device : str, default "cpu"
        Torch device of the model, e.g. ``"cuda"``.
    random_state : int, numpy RandomState or None
        Seed of the model's noise. With a seed, ``predict``, ``predict_quantiles``,
        ``predict_interval`` and ``predict_proba`` are reproducible across fits; without one, each
        ``fit`` draws a seed, so the predict-like calls of one fit still agree with each other.
        torch's global random state is never touched.

    Notes
    -----
    Series with more channels than the model's ``N`` are forecast channel by channel by the engine.
    Exogenous ``X`` is ignored. Sample ``k`` of every series uses the same noise stream, so a
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
        mode: str = "time_series",
        sp: int | None = None,
        preprocessing_method: str = "pos_embedding",
        standardize: bool = True,
        fit_nonstationary: bool = False,
        num_samples: int = 100,
        context_length: int | None = None,
        noise: bool = True,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = None,
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
        super().__init__()
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
        check_adapter_parameters(
            self.model, self.preprocessing_method, self.context_length, self.random_state, self.num_samples
        )
        check_mode(self.mode)
        if self.sp is not None:
            positive_int("sp", self.sp)
        # Without a random_state, each fit draws one seed, so all predict-like calls of this fit agree
        # (the median, quantiles and distribution come from the same sample paths).
        seed = seed_from(self.random_state)
        self._seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed
        self._is_series = isinstance(y, pd.Series)
        self._series_name = y.name if isinstance(y, pd.Series) else None
        self._cur_y = _as_frame(y)
        self._validate_context()  # loads (or finds) the model, so a missing checkpoint fails in fit
        return self

    def _validate_context(self) -> None:
        need = (
            TS_MIN_HISTORY
            if self.mode == "time_series"
            else self._pipeline.min_context_length(self._cur_y.shape[1], self.preprocessing_method)
        )
        for key, frame in self._contexts():
            name = "y" if key is None else f"series {key!r} of y"
            _check_spacing(frame.index, name)
            if len(frame) < need:
                what = (
                    "the time-series mode"
                    if self.mode == "time_series"
                    else (f"preprocessing_method={self.preprocessing_method!r}")
                )
                raise ValueError(
                    f"{name} has {len(frame)} time points; DynaMix with {what} needs at least {need}. "
                    "Pass a longer series"
                    + (" or a larger context_length." if self.context_length is not None else ".")
                )

    def _update(self, y: pd.DataFrame, X: pd.DataFrame | None = None, update_params: bool = True):
        """Extend the context with new observations (no refit, nothing to re-learn)."""
        old, y = self._cur_y, _as_frame(y)
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

    def _season_lengths(self, pieces: list[tuple[Any, pd.DataFrame]]) -> list[int] | None:
        """``sp``, else each series' season from its index frequency (time-series mode); None for the
        published period guess (dynamics mode without ``sp``)."""
        if self.sp is not None:
            return [int(self.sp)] * len(pieces)
        if self.mode != "time_series":
            return None
        return [season_length_from_freq(_check_spacing(frame.index, "y")) for _, frame in pieces]

    def _engine_options(self, pieces: list[tuple[Any, pd.DataFrame]]) -> dict[str, Any]:
        options: dict[str, Any] = dict(
            season_length=self._season_lengths(pieces),
            seed=self._seed,
            noise=self.noise,
            divergence_guard=self.divergence_guard,
            batch_size=self.batch_size,
            mode=self.mode,
        )
        if self.mode == "dynamics":
            options.update(
                preprocessing_method=self.preprocessing_method,
                standardize=self.standardize,
                fit_nonstationary=self.fit_nonstationary,
            )
        return options

    def _sample_paths(self, horizon: int) -> np.ndarray:
        """``(K, H, S, F)`` sample paths (dynamics) or calibrated draws (time series) of all series."""
        pieces = self._contexts()
        contexts = [frame.to_numpy(dtype=np.float64) for _, frame in pieces]
        return self._pipeline.sample_paths(
            contexts, horizon, num_samples=int(self.num_samples), **self._engine_options(pieces)
        )

    def _ts_quantiles(self, fh: ForecastingHorizon, levels: list[float]):
        """Time-series mode: the plan, ``(Q, H, S, F)`` calibrated quantiles and ``(H, S, F)`` points."""
        plan = self._plan(fh)
        horizon = int(max(steps.max() for _, _, steps in plan))
        pieces = self._contexts()
        contexts = [frame.to_numpy(dtype=np.float64) for _, frame in pieces]
        options = self._engine_options(pieces)
        del options["mode"]
        quantiles, point = self._pipeline.predict_quantiles(contexts, horizon, levels, mode="time_series", **options)
        return plan, np.asarray(quantiles), np.asarray(point)

    def _selected(self, fh: ForecastingHorizon) -> tuple[list[tuple[Any, pd.Index, np.ndarray]], np.ndarray]:
        plan = self._plan(fh)
        horizon = int(max(steps.max() for _, _, steps in plan))
        return plan, self._sample_paths(horizon)

    @staticmethod
    def _at_steps(plan, per_step: np.ndarray) -> list[np.ndarray]:
        """Each series' requested steps from an ``(H, S, ...)`` array."""
        return [per_step[steps - 1, s] for s, (_, _, steps) in enumerate(plan)]

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
        """The time-series mode's point forecast, or the median of the sample paths, at the requested steps."""
        if self.mode == "time_series":
            plan, _, point = self._ts_quantiles(fh, [0.5])
        else:
            plan, paths = self._selected(fh)
            point = np.median(paths, axis=0)
        out = self._frame(plan, self._at_steps(plan, point), self._cur_y.columns)
        return out.iloc[:, 0].rename(self._series_name) if self._is_series else out

    def _predict_quantiles(self, fh: ForecastingHorizon, X: pd.DataFrame | None, alpha: list[float]) -> pd.DataFrame:
        """Calibrated quantiles (time series) or empirical quantiles of the sample paths (dynamics)."""
        if self.mode == "time_series":
            plan, q, _ = self._ts_quantiles(fh, list(alpha))
            q = q.transpose(1, 2, 3, 0)  # (H, S, F, A)
        else:
            plan, paths = self._selected(fh)
            q = np.quantile(paths, alpha, axis=0).transpose(1, 2, 3, 0)  # (H, S, F, A)
        values = [block.reshape(block.shape[0], -1) for block in self._at_steps(plan, q)]  # columns (var, alpha)
        columns = pd.MultiIndex.from_product([self._get_varnames(), alpha])
        return self._frame(plan, values, columns)

    def _predict_var(self, fh: ForecastingHorizon, X: pd.DataFrame | None = None, cov: bool = False) -> pd.DataFrame:
        """Variance of the sample paths (marginal; ``cov=True`` is not supported)."""
        if cov:
            raise NotImplementedError("DynaMixForecaster returns marginal variances only; use cov=False.")
        if self.mode == "time_series":
            # The calibrated distribution is Laplace: its mean absolute deviation b is IQR / (2 ln 2),
            # its variance 2 b^2 (from the quantiles, so that a zero floor is respected).
            plan, q, _ = self._ts_quantiles(fh, [0.25, 0.75])
            variance = 2.0 * ((q[1] - q[0]) / (2.0 * np.log(2.0))) ** 2
            return self._frame(plan, self._at_steps(plan, variance), self._cur_y.columns)
        plan, paths = self._selected(fh)
        return self._frame(plan, self._at_steps(plan, paths.var(axis=0)), self._cur_y.columns)

    def _predict_proba(self, fh: ForecastingHorizon, X: pd.DataFrame | None = None, marginal: bool = True):
        """The sample paths (dynamics) or ``num_samples`` calibrated draws (time series) as an skpro
        ``Empirical`` distribution."""
        from skpro.distributions.empirical import Empirical

        plan, paths = self._selected(fh)
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
