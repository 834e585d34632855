"""Column-wise building blocks of the demo data: seeded random draws (numpy) and Arrow
arrays of labels, dates, timestamps, exact decimals and joined strings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def random_stream(seed: int, stream: int) -> np.random.Generator:
    """The random stream of one generated part (see ``vocabulary``'s ``STREAM_*``)."""
    return np.random.default_rng([seed, stream])


def _compute(name: str, *args: object, options: object = None) -> pa.Array:
    """A pyarrow compute kernel by name (the generated ``pc.*`` wrappers are untyped)."""
    return pc.call_function(name, list(args), options)  # type: ignore[arg-type]


def if_else(cond: pa.Array, left: object, right: object) -> pa.Array:
    """``left`` where ``cond``, else ``right``."""
    return _compute("if_else", cond, left, right)


def lower(values: pa.Array) -> pa.Array:
    """The strings in lower case."""
    return _compute("utf8_lower", values)


def replace_regex(values: pa.Array, pattern: str, replacement: str) -> pa.Array:
    """Every match of ``pattern`` replaced."""
    options = pc.ReplaceSubstringOptions(pattern, replacement)
    return _compute("replace_substring_regex", values, options=options)


def join_with(*parts: object) -> pa.Array:
    """Strings joined element-wise; the last part is the separator."""
    return _compute("binary_join_element_wise", *parts)


def _dictionary_encode(values: pa.Array) -> pa.Array:
    return _compute("dictionary_encode", values)


def pick_labels(labels: Sequence[str], codes: np.ndarray) -> pa.Array:
    """Strings of ``labels`` picked by integer ``codes``."""
    return pa.array(list(labels), pa.string()).take(pa.array(codes.astype(np.int32)))


def choice(rng: np.random.Generator, shares: Sequence[float], size: int) -> np.ndarray:
    """Category codes drawn with the given shares (one uniform draw per row)."""
    cumulative = np.cumsum(np.asarray(shares, dtype=np.float64))
    cumulative /= cumulative[-1]
    return np.searchsorted(cumulative, rng.random(size), side="right").astype(np.int8)


def choice_by_row(
    rng: np.random.Generator, shares_by_group: np.ndarray, group: np.ndarray
) -> np.ndarray:
    """Category codes where row i is drawn with ``shares_by_group[group[i]]``."""
    cumulative = np.cumsum(shares_by_group, axis=1)
    cumulative /= cumulative[:, -1:]
    u = rng.random(group.shape[0])
    return (u[:, None] >= cumulative[group]).sum(axis=1).astype(np.int8)


def log_uniform(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Draws spread evenly on a log scale between ``low`` and ``high`` (row-wise bounds)."""
    u = rng.random(low.shape[0])
    return np.exp(np.log(low) + u * (np.log(high) - np.log(low)))


def dates(days: np.ndarray) -> pa.Array:
    """Dates from days since 1970-01-01."""
    return pa.array(days.astype(np.int32), pa.date32())


def timestamps(micros: np.ndarray) -> pa.Array:
    """Timestamps from microseconds since 1970-01-01."""
    return pa.array(micros.astype(np.int64), pa.timestamp("us"))


def exact_decimal(cents: np.ndarray, precision: int, mask: np.ndarray | None = None) -> pa.Array:
    """Exact ``DECIMAL(precision, 2)`` values from integer cents (no float rounding)."""
    cents = cents.astype(np.int64)
    words = np.empty((cents.shape[0], 2), dtype="<i8")
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)  # two's complement sign extension to 128 bits
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little").tobytes())
        null_count = int(mask.sum())
    return pa.Array.from_buffers(
        pa.decimal128(precision, 2),
        cents.shape[0],
        [validity, pa.py_buffer(words.tobytes())],
        null_count=null_count,
    )


def occurrence(keys: pa.Array) -> np.ndarray:
    """For each row, how many earlier rows have the same key (0 for the first)."""
    encoded = _dictionary_encode(keys)
    assert isinstance(encoded, pa.DictionaryArray)
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(indices, kind="stable")
    sorted_keys = indices[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_keys)) + 1]
    group_sizes = np.diff(np.r_[starts, sorted_keys.shape[0]])
    rank_sorted = np.arange(sorted_keys.shape[0]) - np.repeat(starts, group_sizes)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def with_number(base: pa.Array, number: np.ndarray, separator: str) -> pa.Array:
    """``base`` + separator + number where number > 1, else ``base`` unchanged."""
    numbered = join_with(base, pc.cast(pa.array(number.astype(np.int64)), pa.string()), separator)
    return if_else(pa.array(number > 1), numbered, base)


def join_text(*parts: pa.Array | str) -> pa.Array:
    """Strings joined element-wise with nothing between them."""
    return join_with(*parts, "")
