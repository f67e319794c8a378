"""The seed splits: training, validation and test are disjoint and named in one place."""

from __future__ import annotations

from itertools import pairwise

import pytest

from agents.training import seeds as splits
from simcity.errors import SimcityError


def test_every_split_end_is_where_the_module_says() -> None:
    """Each split's first and last seed, and one past either end, land where they should."""
    ends = {
        "training": (0, 2**32 - 1),
        "test": (2**32, 2**33 - 1),
        "validation": (2**33, 2**33 + 2**32 - 1),
    }
    for split, (first, last) in ends.items():
        assert splits.split_of(first) == split
        assert splits.split_of(last) == split
    assert splits.split_of(2**32 - 1) != splits.split_of(2**32)  # training | test
    assert splits.split_of(2**33 - 1) != splits.split_of(2**33)  # test | validation
    for outside in (-1, 2**33 + 2**32):
        with pytest.raises(ValueError, match="in no split"):
            splits.split_of(outside)


def test_the_splits_are_disjoint() -> None:
    """No seed is in two splits: the split of every seed handed out is the one asked for,
    and the ranges of the three splits do not overlap."""
    num = 1000
    validation, test = splits.validation_seeds(num), splits.test_seeds(num)
    assert {splits.split_of(s) for s in validation} == {"validation"}
    assert {splits.split_of(s) for s in test} == {"test"}
    assert not set(validation) & set(test)
    ranges = sorted(
        (base, base + splits.SPLIT_SIZE)
        for base in (splits.TRAINING_BASE, splits.TEST_BASE, splits.VALIDATION_BASE)
    )
    assert all(end <= start for (_, end), (start, _) in pairwise(ranges))
    assert splits.split_seeds("validation", 3) == validation[:3]
    assert splits.split_seeds("test", 3) == test[:3]
    assert splits.validation_seeds(0) == [] and splits.test_seeds(1) == [2**32]


def test_training_episode_seeds_are_in_the_training_split() -> None:
    """What a training run resets its envs with (32-bit hashes) is never a held-out day."""
    pytest.importorskip("torch")
    from agents.training.rollout import TEACHER_ENV_INDEX, episode_seed

    envs = (0, 3, TEACHER_ENV_INDEX)
    hashed = [episode_seed(s, e, k) for s in (0, 7) for e in envs for k in (0, 99)]
    assert {splits.split_of(s) for s in hashed} == {"training"}


def test_an_unknown_split_is_a_user_error() -> None:
    with pytest.raises(SimcityError, match="split") as err:
        splits.split_seeds("training", 2)
    assert err.value.expected == "validation or test"
    with pytest.raises(ValueError, match="seeds"):
        splits.validation_seeds(-1)


def test_pytest_does_not_collect_the_test_split() -> None:
    """``test_seeds`` is a split, not a test, even when imported into a test module."""
    assert splits.test_seeds.__test__ is False  # type: ignore[attr-defined]
