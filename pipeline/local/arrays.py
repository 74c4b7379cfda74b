"""Small vectorised helpers shared by the stages."""

from __future__ import annotations

import numpy as np


def ragged_arange(sizes: np.ndarray) -> np.ndarray:
    """0..n-1 for each n in ``sizes``, concatenated: positions inside variable-length groups.

    ``ragged_arange([2, 0, 3])`` is ``[0, 1, 0, 1, 2]``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
