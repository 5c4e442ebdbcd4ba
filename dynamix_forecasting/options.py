"""ForecastOptions: the one options object every forecasting entry point takes, checked once.

Every rule about options lives here: their types and ranges, which mode each belongs to, the default
mode, and the quantile levels. The pipeline's methods, both adapters, ``predict_df``, the CLI and the app
build one :class:`ForecastOptions` and pass it on.

The default mode (``mode="auto"``, at every entry point) is resolved per call by :meth:`ForecastOptions.resolve`:

- an option that only the dynamics mode has (``preprocessing_method``, ``standardize``,
  ``fit_nonstationary``, ``initial_x``, ``noise``) selects the dynamics mode, and one that only the
  time-series mode has (``interval_scale``) selects the time-series mode;
- otherwise a univariate context is forecast by the time-series mode (ordinary series: seasons,
  trends, calibrated intervals) and a context of two or more channels by the dynamics mode (the observed
  state of a dynamical system: the published pipeline).

An option set for the other mode than the one chosen explicitly is refused, naming the mode it belongs to.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

Mode = Literal["auto", "dynamics", "time_series"]
Embedding = Literal["pos_embedding", "delay_embedding", "delay_embedding_random", "zero_embedding"]
Backend = Literal["auto", "numba", "torch", "triton", "reference"]

MODES: tuple[str, ...] = get_args(Mode)
EMBEDDINGS: tuple[str, ...] = get_args(Embedding)
BACKENDS: tuple[str, ...] = get_args(Backend)
DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: Options only the dynamics mode uses (None: not set, the published default applies).
DYNAMICS_ONLY = ("preprocessing_method", "standardize", "fit_nonstationary", "initial_x", "noise")
#: Options only the time-series mode uses.
TIME_SERIES_ONLY = ("interval_scale",)
#: Sample paths behind the dynamics mode's quantiles and median when ``num_samples`` is not set.
DEFAULT_QUANTILE_SAMPLES = 100


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (Python or numpy), else a clear error naming ``name``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool; anything else (a string such as ``"no"`` is truthy) is an error."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}.")
    return bool(value)


def check_seed(seed: Any) -> int | None:
    """A seed is None (fresh entropy) or a non-negative int (numpy's SeedSequence rules)."""
    if seed is None:
        return None
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int or None, got {type(seed).__name__} {seed!r}.")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed}.")
    return int(seed)


def _positive_number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number or None, got {type(value).__name__} {value!r}.")
    if not (np.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name} must be a positive, finite number or None, got {value!r}.")
    return float(value)


def check_guard(guard: Any) -> float | None:
    """The divergence guard is None or a positive, finite number."""
    return _positive_number("divergence_guard", guard)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else an error listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {choices}.")
    return value


def check_levels(levels: Any) -> tuple[float, ...]:
    """Quantile levels: one or more numbers strictly between 0 and 1 (the one home of this rule)."""
    try:
        arr = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"quantile levels must be numbers strictly between 0 and 1, got {levels!r}.") from exc
    if arr.ndim != 1 or arr.size == 0 or np.any(~((arr > 0) & (arr < 1))):
        raise ValueError(
            f"quantile levels must be one or more numbers strictly between 0 and 1, got {np.ravel(arr).tolist()}."
        )
    return tuple(float(q) for q in arr)


def _season(value: Any) -> int | tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        return positive_int("season_length", value)
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__len__"):
        raise TypeError(f"season_length must be an int, one int per series or None, got {type(value).__name__}.")
    values = np.asarray(value, dtype=object)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"season_length must be one int or a flat sequence of ints, got shape {values.shape}.")
    return tuple(positive_int("season_length", v) for v in values)


def _initial_x(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor, possibly on another device
        if getattr(value, "is_meta", False):
            raise ValueError("initial_x is a tensor on the meta device (it holds no values); pass real values.")
        value = value.detach().cpu().numpy()
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"initial_x must be numbers, shape (F,) or (S, F), got {type(value).__name__}.") from exc
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise ValueError(f"initial_x has shape {arr.shape}; expected (F,) or (S, F).")
    if not np.isfinite(arr).all():
        raise ValueError("initial_x contains NaN/inf values; pass finite initial values.")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ForecastOptions:
    """How to forecast: every option of every entry point, validated when built.

    Build it once (``ForecastOptions(mode="time_series", season_length=12)``) and pass it to any
    method of :class:`~dynamix_forecasting.DynaMixPipeline`, or pass its fields as keywords there.
    :meth:`replace` returns a changed copy.

    Attributes
    ----------
    mode : {"auto", "dynamics", "time_series"}, default "auto"
        ``"dynamics"``: the published pipeline (a context is the observed state of a dynamical system).
        ``"time_series"``: the time-series mode for ordinary series (seasonal adjustment, candidates
        weighted on rolling origins inside the history, calibrated quantiles). ``"auto"``: see
        :meth:`resolve` (univariate contexts go to the time-series mode, multivariate ones to the dynamics mode).
    preprocessing_method : str, optional
        Dynamics mode: how ``F < N`` channels are lifted to the model's ``N``: ``"pos_embedding"``
        (default), ``"delay_embedding"``, ``"delay_embedding_random"`` or ``"zero_embedding"``.
    season_length : int or sequence of int, optional
        The data's season (one for all series or one per series). Time-series mode: the season to
        remove and put back (default: estimated from each history). Dynamics mode: the period of the
        positional embedding (default: the published guess from the autocorrelation).
    context_length : int, optional
        Use only the most recent ``context_length`` points of each series (default: all of them).
    standardize : bool, optional
        Dynamics mode: standardize each channel with the context's mean and std (default True).
    fit_nonstationary : bool, optional
        Dynamics mode: Box-Cox and power-law detrend each channel first (default False).
    initial_x : array-like, optional
        Dynamics mode: initial condition ``(F,)`` or ``(S, F)`` in data units instead of the last
        context value; with fewer entries than ``N`` the rest comes from the nearest context frame.
    num_samples : int, optional
        Sample paths. ``forecast`` returns the point forecast for 1 (its default) and that many paths
        otherwise; ``sample_paths`` returns that many (default 1). The dynamics mode's quantiles and median
        come from that many paths (default 100); the time-series mode's quantiles are those of its
        calibrated distribution itself, and its paths are draws from it.
    seed : int or None, default 0
        Seed of the gating noise, random delays and time-series draws; the global RNGs are not touched.
        None draws fresh entropy.
    noise : bool, optional
        Dynamics mode: the published gating noise (default True); False gives the deterministic forecast.
    divergence_guard : float, optional
        Bound every latent entry to this multiple of the context's largest absolute standardized value.
        Dynamics mode: off by default (exact model). Time-series mode: 10 by default.
    interval_scale : float, optional
        Time-series mode: multiplier of the calibrated spread (default
        :data:`~dynamix_forecasting.timeseries.INTERVAL_SCALE`).
    backend : {"auto", "numba", "torch", "triton", "reference"}, default "auto"
        The step implementation (see :func:`~dynamix_forecasting.rollout.choose_backend`).
    batch_size : int, optional
        Roll out at most this many (series x samples) rows at a time to bound memory.
    progress : bool, default False
        Show a progress bar.
    """

    mode: Mode = "auto"
    preprocessing_method: Embedding | None = None
    season_length: int | tuple[int, ...] | None = None
    context_length: int | None = None
    standardize: bool | None = None
    fit_nonstationary: bool | None = None
    initial_x: Any = None
    num_samples: int | None = None
    seed: int | None = 0
    noise: bool | None = None
    divergence_guard: float | None = None
    interval_scale: float | None = None
    backend: Backend = "auto"
    batch_size: int | None = None
    progress: bool = False
    # Not an option: which mode-specific options were given (filled in by __post_init__).
    _set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "mode", check_choice("mode", self.mode, MODES))
        if self.preprocessing_method is not None:
            check_choice("preprocessing_method", self.preprocessing_method, EMBEDDINGS)
        put(self, "season_length", _season(self.season_length))
        if self.context_length is not None:
            put(self, "context_length", positive_int("context_length", self.context_length))
        for name in ("standardize", "fit_nonstationary", "noise"):
            if getattr(self, name) is not None:
                put(self, name, check_bool(name, getattr(self, name)))
        put(self, "progress", check_bool("progress", self.progress))
        put(self, "initial_x", _initial_x(self.initial_x))
        if self.num_samples is not None:
            put(self, "num_samples", positive_int("num_samples", self.num_samples))
        put(self, "seed", check_seed(self.seed))
        put(self, "divergence_guard", check_guard(self.divergence_guard))
        put(self, "interval_scale", _positive_number("interval_scale", self.interval_scale))
        put(self, "backend", check_choice("backend", self.backend, BACKENDS))
        if self.batch_size is not None:
            put(self, "batch_size", positive_int("batch_size", self.batch_size))
        if self.initial_x is not None and self.fit_nonstationary:
            raise ValueError(
                "initial_x cannot be combined with fit_nonstationary=True: the non-stationary transforms are "
                "defined on the context's time axis. Drop initial_x or set fit_nonstationary=False."
            )
        given = frozenset(name for name in (*DYNAMICS_ONLY, *TIME_SERIES_ONLY) if getattr(self, name) is not None)
        put(self, "_set", given)
        dynamics, series = given & set(DYNAMICS_ONLY), given & set(TIME_SERIES_ONLY)
        if dynamics and series:
            raise ValueError(
                f"{sorted(dynamics)} belong to mode='dynamics' and {sorted(series)} to mode='time_series'; "
                "pass the options of one mode."
            )
        if self.mode == "time_series" and dynamics:
            name = sorted(dynamics)[0]
            raise ValueError(
                f"{name}={getattr(self, name)!r} belongs to mode='dynamics'; the time-series mode chooses its own "
                "preprocessing and forecasts without gating noise. Drop it, or use mode='dynamics'."
            )
        if self.mode == "dynamics" and series:
            raise ValueError(
                "interval_scale belongs to mode='time_series' (calibrated quantiles); drop it, or use that mode."
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ForecastOptions):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    __hash__ = None  # type: ignore[assignment]  # initial_x may be an array

    @classmethod
    def of(cls, options: ForecastOptions | None = None, **fields: Any) -> ForecastOptions:
        """``options`` (or the defaults) with ``fields`` changed; unknown names are a ``TypeError``.

        Parameters
        ----------
        options : ForecastOptions, optional
            A starting point.
        **fields
            Option values by name.

        Returns
        -------
        ForecastOptions
        """
        if options is not None and not isinstance(options, ForecastOptions):
            raise TypeError(f"options must be a ForecastOptions, got {type(options).__name__}.")
        names = cls.names()
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise TypeError(f"Unknown forecast option(s) {unknown}; the options are {list(names)}.")
        base = options if options is not None else cls()
        return base.replace(**fields) if fields else base

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))

    def replace(self, **changes: Any) -> ForecastOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def resolve(self, n_channels: int) -> ForecastOptions:
        """The options with ``mode`` decided for a context of ``n_channels`` channels (see the module)."""
        if self.mode != "auto":
            return self
        if self._set & set(DYNAMICS_ONLY):
            return self.replace(mode="dynamics")
        if self._set & set(TIME_SERIES_ONLY):
            return self.replace(mode="time_series")
        return self.replace(mode="time_series" if n_channels == 1 else "dynamics")

    # The effective values of the dynamics mode's options (their published defaults when not set).
    @property
    def embedding(self) -> str:
        """The embedding of the dynamics mode."""
        return self.preprocessing_method or "pos_embedding"

    @property
    def standardizes(self) -> bool:
        """Whether the dynamics mode standardizes."""
        return True if self.standardize is None else self.standardize

    @property
    def nonstationary(self) -> bool:
        """Whether the dynamics mode applies the non-stationary transforms."""
        return bool(self.fit_nonstationary)

    @property
    def noisy(self) -> bool:
        """Whether the dynamics mode's rollout has gating noise."""
        return True if self.noise is None else self.noise

    def paths(self, default: int = 1) -> int:
        """``num_samples``, or ``default`` when not set."""
        return default if self.num_samples is None else self.num_samples


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)
