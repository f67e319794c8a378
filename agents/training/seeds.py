"""The three splits of episode seeds, named in one place: training, validation and test.

A seed is the ``seed`` of `simcity.env.CityEnv.reset`: it fixes the day (demand noise,
incidents and their detection luck, sensor failures), so the split a seed belongs to says
what the day may be used for.

- ``training``: ``[0, 2**32)``. Training runs reset their envs with 32-bit hashes
  (`agents.training.rollout.episode_seed`, which the teacher's days use too), and the small
  seeds a user or a fitting step picks (``simcity run --seed``, distillation's ``seed + k``)
  fall here as well. Nothing is chosen or reported on these days.
- ``validation``: ``[2**33, 2**33 + 2**32)``, `validation_seeds`. Every CHOICE is made on
  these days: hyper-parameters, gains, calibration, which checkpoint, variant or setting
  to keep.
- ``test``: ``[2**32, 2**33)``, `test_seeds`. The final reported comparison only, once the
  choices are made; nothing is tuned on them.

The ranges do not overlap, so a day chosen on is never a day reported on, and neither is a
training day (`split_of` says which split a seed is in).
"""

from __future__ import annotations

from typing import Literal

from simcity.errors import SimcityError

Split = Literal["training", "validation", "test"]
SPLITS: tuple[Split, ...] = ("training", "validation", "test")

SPLIT_SIZE = 2**32
"""Seeds in each split."""
TRAINING_BASE = 0
"""First training seed; training seeds are the 32-bit ones, ``[0, 2**32)``."""
TEST_BASE = 2**32
"""First test seed: test seeds are ``2**32 + k``."""
VALIDATION_BASE = 2**33
"""First validation seed: validation seeds are ``2**33 + k``."""

_BASES: dict[Split, int] = {
    "training": TRAINING_BASE,
    "validation": VALIDATION_BASE,
    "test": TEST_BASE,
}


def _seeds(base: int, num: int) -> list[int]:
    if not 0 <= num <= SPLIT_SIZE:
        raise ValueError(f"asked for {num} seeds; a split holds 0 to {SPLIT_SIZE}")
    return [base + k for k in range(num)]


def validation_seeds(num: int) -> list[int]:
    """The first ``num`` validation seeds, for every choice (tuning, selection, calibration).

    >>> validation_seeds(2) == [2**33, 2**33 + 1]
    True
    """
    return _seeds(VALIDATION_BASE, num)


def test_seeds(num: int) -> list[int]:
    """The first ``num`` test seeds, for the final reported comparison only.

    >>> test_seeds(2) == [2**32, 2**32 + 1]
    True
    """
    return _seeds(TEST_BASE, num)


test_seeds.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def split_seeds(split: str, num: int) -> list[int]:
    """The first ``num`` seeds of ``split`` ("validation" or "test": training seeds are the
    training run's own hashes, so none is handed out here).

    Raises `SimcityError` for another split name.
    """
    if split == "validation":
        return validation_seeds(num)
    if split == "test":
        return test_seeds(num)
    raise SimcityError(
        f"unknown seed split {split!r}", field="split", expected="validation or test"
    )


def split_of(seed: int) -> Split:
    """The split ``seed`` belongs to.

    >>> split_of(0), split_of(2**32 - 1), split_of(2**32), split_of(2**33)
    ('training', 'training', 'test', 'validation')

    Raises `ValueError` for a seed in no split (negative, or from ``2**33 + 2**32`` on).
    """
    for split, base in _BASES.items():
        if base <= seed < base + SPLIT_SIZE:
            return split
    raise ValueError(f"seed {seed} is in no split (0 to {VALIDATION_BASE + SPLIT_SIZE - 1})")
