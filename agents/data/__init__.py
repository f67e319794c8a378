"""Data shipped inside the `agents` package: the pretrained generalist policy.

``generalist.pt`` is a checkpoint of `agents.training.generalist.train_generalist` (the
format of ``simcity train``), trained on generated cities only; ``generalist.json`` says
how it was made (command, commit, steps, cities, wall time). No torch import here, so the
command line can name the file without torch installed.
"""

from __future__ import annotations

from pathlib import Path

from simcity.errors import SimcityError

PRETRAINED_NAME = "pretrained"
"""What ``--policy`` and ``simcity finetune`` call the shipped checkpoint."""
PRETRAINED_FILE = Path(__file__).resolve().parent / "generalist.pt"


def pretrained_checkpoint() -> Path:
    """The shipped generalist checkpoint's path.

    Raises:
        SimcityError: the file is not there (a package built without its data).
    """
    path = PRETRAINED_FILE
    if not path.is_file():
        raise SimcityError(
            "the pretrained generalist is missing from the package",
            file=path,
            expected="agents/data/generalist.pt (reinstall simcity, or train one with "
            "`simcity train-generalist`)",
        )
    return path
