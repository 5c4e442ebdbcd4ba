"""Memory a forecast will need, checked before any work starts.

A forecast's memory is dominated by its output (samples x horizon x series x channels values) and by
per-sample-path bookkeeping (one seeded noise generator per sample index, noise drawn in blocks).
Asking for more than the machine has would otherwise end in the allocator failing halfway through a
long rollout, or in the operating system killing the process.
"""

from __future__ import annotations

import os

#: Bytes per output value at the peak: the float32 rollout buffer, the float64 result and a float32
#: copy for tensor output (see ``DynaMixPipeline._finish``).
BYTES_PER_VALUE = 16
#: Bytes per sample path: its torch.Generator state (~5 KB) and a block of 256 noise steps.
BYTES_PER_SAMPLE = 10_000
#: Bytes per rolled-out row held at once: latent state, scratch and a block of noise.
BYTES_PER_ROW = 2_000
#: Bytes per context value: float64 input, float32 standardized and embedded copies, kernel layouts.
BYTES_PER_CONTEXT_VALUE = 40
#: Share of the available memory a single forecast may use.
USABLE_SHARE = 0.8


class ForecastTooLargeError(ValueError):
    """A forecast would need more memory than the machine has available."""


def _cgroup_headroom() -> int | None:
    """Bytes left under this process' cgroup (v2) memory limit, or None without one (containers set it)."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None when unknown.

    Linux ``MemAvailable``, and no more than what a container's memory limit leaves.
    """
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = None
    headroom = _cgroup_headroom()
    if headroom is not None:
        available = headroom if available is None else min(available, headroom)
    return available


def forecast_memory(
    *, n_rows: int, num_samples: int, horizon: int, n_values: int, context_values: int, batch_size: int | None
) -> int:
    """Estimated peak bytes of one ``forecast`` call.

    Parameters
    ----------
    n_rows : int
        Series rolled out (channels count separately when they are forecast one by one).
    num_samples : int
        Sample paths per series.
    horizon : int
        Forecast steps.
    n_values : int
        Output values per step and sample (series x channels).
    context_values : int
        Context values after embedding (all series).
    batch_size : int or None
        Rows rolled out at once.
    """
    rows_at_once = n_rows * num_samples if batch_size is None else min(batch_size, n_rows * num_samples)
    return (
        BYTES_PER_VALUE * num_samples * horizon * n_values
        + BYTES_PER_SAMPLE * num_samples
        + BYTES_PER_ROW * rows_at_once
        + BYTES_PER_CONTEXT_VALUE * context_values
    )


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_memory(
    *, n_rows: int, num_samples: int, horizon: int, n_values: int, context_values: int, batch_size: int | None
) -> int:
    """Refuse a forecast that would not fit in the available memory.

    Returns the estimate in bytes. Raises :class:`ForecastTooLargeError` (a ``ValueError``) with the
    estimate, what is available and what to change.
    """
    need = forecast_memory(
        n_rows=n_rows,
        num_samples=num_samples,
        horizon=horizon,
        n_values=n_values,
        context_values=context_values,
        batch_size=batch_size,
    )
    have = available_memory()
    if have is not None and need > USABLE_SHARE * have:
        output = BYTES_PER_VALUE * num_samples * horizon * n_values
        raise ForecastTooLargeError(
            f"This forecast needs about {_gb(need)} of memory ({num_samples} sample path(s) x {horizon} steps x "
            f"{n_values} series-channels take {_gb(output)}, each sample path about {BYTES_PER_SAMPLE / 1e3:g} KB "
            f"more), but only {_gb(have)} are available. Lower the horizon or num_samples, or forecast fewer "
            "series per call (e.g. in a loop, keeping what you need of each result)."
        )
    return need
