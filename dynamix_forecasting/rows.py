"""The dynamics mode's rows: per-row transforms into what the model sees, and their inverses.

A *row* is one series, or one channel of a series when its channels are forecast one by one (more
channels than the model's ``N``). :func:`prepare_rows` turns a :class:`~dynamix_forecasting.inputs.SeriesBatch`
into float32 embedded contexts and initial conditions, and keeps what undoes each row's transforms
(:class:`PreparedRows`; the dynamics mode inverts all rows at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inputs import SeriesBatch
from .options import ForecastOptions
from .preprocessing import (
    NonstationaryTransform,
    complete_initial_condition,
    embed,
    min_context_length,
    positional_taus,
    standardize_univariate,
)
from .preprocessing import standardize as standardize_series


@dataclass(frozen=True)
class RowInverse:
    """What undoes one row's preprocessing on its forecast (data units, float64), on the published path."""

    n_data: int
    mean: np.ndarray | None
    std: np.ndarray | None
    nonstationary: NonstationaryTransform | None
    constant: np.ndarray
    constant_values: np.ndarray


@dataclass(frozen=True)
class PreparedRows:
    """The model's inputs for every row and what undoes each row's transforms, as arrays.

    Attributes
    ----------
    embedded : list of numpy.ndarray
        ``R`` embedded float32 contexts ``(T_r, N)``.
    x0 : numpy.ndarray
        ``(R, N)`` initial conditions.
    split : bool
        Whether rows are single channels of the series (more channels than ``N``).
    mean, std : numpy.ndarray or None
        ``(R, n)`` standardization of each row's ``n`` data channels (None: not standardized).
    constant : numpy.ndarray
        ``(R, n)`` channels that hold one value (forecast as that value).
    first : numpy.ndarray
        ``(R, n)`` each row's first value (the value of a constant channel).
    nonstationary : list
        Per row, its :class:`~dynamix_forecasting.preprocessing.NonstationaryTransform` or None.
    """

    embedded: list[np.ndarray]
    x0: np.ndarray
    split: bool
    mean: np.ndarray | None
    std: np.ndarray | None
    constant: np.ndarray
    first: np.ndarray
    nonstationary: list[NonstationaryTransform | None]

    @property
    def n_obs(self) -> int:
        """Observed channels to keep from the rollout."""
        return int(self.constant.shape[1])


def transform_row(series: np.ndarray, standardize: bool, fit_nonstationary: bool) -> tuple[np.ndarray, RowInverse]:
    """Non-stationary transforms and standardization of one series: the float32 data the model sees and the
    inverse. Statistics are per series and accurate for any scale and offset (see
    :func:`~dynamix_forecasting.preprocessing.standardize`), so a forecast does not depend on the other series
    of a batch, nor (beyond float32 rounding of the standardized context) on the series' scale and offset."""
    data, mean, std, nonstationary = series, None, None, None
    if fit_nonstationary:
        nonstationary, data = NonstationaryTransform.fit_transform(data)
    if standardize:
        data, mean, std = standardize_series(data)
    constant = np.ptp(series, axis=0) == 0
    inverse = RowInverse(series.shape[1], mean, std, nonstationary, constant, series[0].copy())
    return np.asarray(data, dtype=np.float32), inverse


def transform_rows(
    rows: list[np.ndarray], standardize: bool, fit_nonstationary: bool
) -> list[tuple[np.ndarray, RowInverse]]:
    """:func:`transform_row` of every row; univariate rows of equal length are standardized together
    (:func:`~dynamix_forecasting.preprocessing.standardize_univariate`, the same bits as one by one)."""
    out: list[tuple[np.ndarray, RowInverse] | None] = [None] * len(rows)
    if standardize and not fit_nonstationary:
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            if r.shape[1] == 1:
                groups.setdefault(r.shape[0], []).append(i)
        for members in groups.values():
            if len(members) < 2:
                continue
            batch = np.stack([rows[i][:, 0] for i in members])
            data, mean, std = standardize_univariate(batch)
            for k, i in enumerate(members):
                series = rows[i]
                inverse = RowInverse(
                    1, mean[k : k + 1], std[k : k + 1], None, np.ptp(series, axis=0) == 0, series[0].copy()
                )
                out[i] = (data[k][:, None], inverse)
    return [
        o if o is not None else transform_row(r, standardize, fit_nonstationary) for o, r in zip(out, rows, strict=True)
    ]


def transform_rows_fast(rows: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Standardization of every row with exact float64 statistics from one compiled pass
    (:func:`~dynamix_forecasting.batch_stats.row_statistics`): the same bits for a row alone or in any batch.

    Returns the float32 standardized rows and ``(R, n)`` means, stds and constant-channel flags.
    """
    from .batch_stats import standardize_rows  # numba loads with the first fast forecast, not at import

    return standardize_rows(rows)


def embed_row(
    data: np.ndarray,
    mean: np.ndarray | None,
    std: np.ndarray | None,
    initial_x: np.ndarray | None,
    n_model: int,
    method: str,
    rng: np.random.Generator,
    tau: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embedding up to the model's ``N`` channels and the initial condition of one row: ``(embedded, x0)``."""
    embedded = embed(data, n_model, method, rng, tau=tau)
    if embedded.shape[0] < 2:
        raise ValueError(
            f"A context of {data.shape[0]} points leaves {embedded.shape[0]} frame(s) after {method}; "
            f"DynaMix needs at least 2. Pass a longer context (at least "
            f"{min_context_length(data.shape[1], n_model, method)} points) or use preprocessing_method='zero_embedding'."
        )
    if initial_x is None:
        return embedded, embedded[-1]
    x = initial_x if std is None else (initial_x - mean) / std
    x = x.astype(np.float32)
    return embedded, x if x.shape[0] == n_model else complete_initial_condition(x, embedded)


def initial_x_rows(initial_x: np.ndarray | None, batch: SeriesBatch, split: bool) -> list[np.ndarray | None]:
    """The validated initial condition of every row (None: the last context frame)."""
    n_series, n_data = len(batch.series), batch.n_channels
    if initial_x is None:
        return [None] * (n_series * (n_data if split else 1))
    arr = initial_x
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (n_series, arr.shape[0]))
    if arr.shape != (n_series, n_data):
        raise ValueError(
            f"initial_x has shape {initial_x.shape}; expected ({n_data},) or ({n_series}, {n_data}) "
            "(one value per data channel, optionally per series)."
        )
    if split:
        return [arr[s, f : f + 1] for s in range(n_series) for f in range(n_data)]
    return [arr[s] for s in range(n_series)]


def season_per_series(season_length: int | tuple[int, ...] | None, n_series: int) -> list[int] | None:
    """One season length per series from the option (one for all or one per series), or None."""
    if season_length is None:
        return None
    values = [season_length] if isinstance(season_length, int) else list(season_length)
    if len(values) not in (1, n_series):
        raise ValueError(f"season_length must be one int or one per series ({n_series}), got {len(values)} values.")
    return values * n_series if len(values) == 1 else values


def prepare_rows(batch: SeriesBatch, options: ForecastOptions, n_model: int, fast: bool = False) -> PreparedRows:
    """Transforms, embedding and initial conditions of every row of ``batch`` (dynamics mode).

    Parameters
    ----------
    batch : SeriesBatch
        The context, already cut to ``options.context_length`` and checked to be long enough.
    options : ForecastOptions
        Resolved options of the dynamics mode.
    n_model : int
        The model's observation dimension ``N``.
    fast : bool, default False
        Standardize with exact float64 statistics in one compiled pass (the fast backends) instead of the
        published float32 statistics (the reference step: the authors' bits wherever those are accurate).

    Returns
    -------
    PreparedRows
    """
    n_data = batch.n_channels
    split = n_data > n_model
    rows = [s[:, [f]] for s in batch.series for f in range(n_data)] if split else list(batch.series)
    method = options.embedding
    periods = season_per_series(options.season_length, len(batch.series))
    if periods is not None and method != "pos_embedding":
        raise ValueError(
            f"season_length sets the period of preprocessing_method='pos_embedding', not {method!r}; "
            "drop season_length or use pos_embedding."
        )
    first = np.stack([r[0] for r in rows])
    nonstationary: list[NonstationaryTransform | None] = [None] * len(rows)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    if fast and options.standardizes and not options.nonstationary:
        datas, mean, std, constant = transform_rows_fast(rows)
    else:
        staged = transform_rows(rows, options.standardizes, options.nonstationary)
        datas = [data for data, _ in staged]
        constant = np.stack([inverse.constant for _, inverse in staged])
        nonstationary = [inverse.nonstationary for _, inverse in staged]
        if options.standardizes:
            mean = np.stack([np.asarray(inverse.mean, dtype=np.float64) for _, inverse in staged])
            std = np.stack([np.asarray(inverse.std, dtype=np.float64) for _, inverse in staged])
    taus: list[int | None] = [None] * len(rows)
    if periods is not None:
        taus = [p for p in periods for _ in range(n_data)] if split else list(periods)
    elif method == "pos_embedding" and len(rows) > 1 and rows[0].shape[1] < n_model:
        # The embedding periods of many series from batched FFTs (one series keeps the exact 1-D path).
        taus = list(positional_taus(datas))
    rng = np.random.default_rng(options.seed)
    init_rows = initial_x_rows(options.initial_x, batch, split)
    embedded, x0 = [], []
    for i, (data, x, tau) in enumerate(zip(datas, init_rows, taus, strict=True)):
        e, start = embed_row(data, None if mean is None else mean[i], None if std is None else std[i], x, n_model,
                             method, rng, tau)  # fmt: skip
        embedded.append(e)
        x0.append(start)
    return PreparedRows(embedded, np.stack(x0), split, mean, std, constant, first, nonstationary)
