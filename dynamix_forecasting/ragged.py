"""Many 1-D series of any lengths in one flat array, so that per-series work runs as array operations.

The time-series mode forecasts every history and every rolling origin of it (a prefix of the history): as
:class:`Ragged` these are one float64 array with a start and a length per row, and prefixes share the
values of their series instead of copying them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ragged:
    """Rows ``values[starts[g] : starts[g] + lengths[g]]`` of one flat array.

    Attributes
    ----------
    values : numpy.ndarray
        The flat float64 values.
    starts : numpy.ndarray
        ``(G,)`` where each row starts in ``values``.
    lengths : numpy.ndarray
        ``(G,)`` each row's length (at least 1).
    """

    values: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, series: Sequence[np.ndarray]) -> Ragged:
        """The series (1-D, at least one value each) in one flat float64 array."""
        lengths = np.fromiter((len(y) for y in series), dtype=np.int64, count=len(series))
        starts = np.zeros(len(series), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        values = np.concatenate(series).astype(np.float64, copy=False) if len(series) else np.empty(0)
        return cls(values, starts, lengths)

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def __getitem__(self, g: int | np.integer) -> np.ndarray:
        return self.values[self.starts[g] : self.starts[g] + self.lengths[g]]

    @property
    def stops(self) -> np.ndarray:
        """``(G,)`` one past each row's last value."""
        return self.starts + self.lengths

    def prefixes(self, rows: np.ndarray, lengths: np.ndarray) -> Ragged:
        """The first ``lengths[i]`` values of row ``rows[i]`` (no copy of the values)."""
        return Ragged(self.values, self.starts[rows], np.asarray(lengths, dtype=np.int64))

    def tails(self, width: int) -> np.ndarray:
        """``(G, width)``: each row's last ``width`` values right-aligned (NaN before a shorter row's start)."""
        at = self.stops[:, None] - width + np.arange(width)[None]
        inside = at >= self.starts[:, None]
        return np.where(inside, self.values[np.where(inside, at, 0)], np.nan)

    def last(self) -> np.ndarray:
        """``(G,)`` each row's last value."""
        return self.values[self.stops - 1]

    def reduce(self, ufunc: np.ufunc) -> np.ndarray:
        """``(G,)`` ``ufunc.reduce`` of each row's values (rows must tile ``values`` in order, as from
        :meth:`of`)."""
        return ufunc.reduceat(self.values, self.starts) if len(self) else np.empty(0)
