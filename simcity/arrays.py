"""Array helpers every subsystem shares (the bottom layer, with `simcity.errors`)."""

from __future__ import annotations

import numpy as np


def read_only(array: np.ndarray) -> np.ndarray:
    """``array``, marked read-only in place (the world's states show arrays no one writes).

    >>> a = read_only(np.zeros(2))
    >>> a.flags.writeable
    False
    """
    array.setflags(write=False)
    return array
