"""`simcity validate`: every check `simcity run` makes of a scenario, without the day.

`run` loads the scenario, builds its city, makes the env and, at reset, the world: the
day's demand, the grid carbon of the city and the data centre (reading any trace), the
feeders, the sensors and the device profiles, and the day's compute budget (billing the
policy's decisions). `validate` does all of that, so a scenario that passes here is one
`run` accepts; only the day's simulation (traffic equilibria, incidents) is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError


class Validated(NamedTuple):
    """A scenario that passed every check, and its city."""

    scenario: Scenario
    city: City


def validate_scenario(name_or_path: str | Path) -> Validated:
    """Load, build and set up the world of a scenario as `run` does; `SimcityError` names
    the file and field of the first problem.

    >>> checked = validate_scenario("tiny")
    >>> checked.city.num_nodes, checked.scenario.time.num_steps
    (16, 96)
    """
    file = str(name_or_path)
    scenario = load_scenario(name_or_path)
    try:
        city = build_city(scenario, file=file)
        env = CityEnv(scenario, city=city)
        env.reset(seed=scenario.seed)  # the world: demand, carbon traces, devices, budget
    except SimcityError as err:
        raise err.with_file(file) from None
    return Validated(scenario, city)


def scenario_bases(name_or_path: str | Path) -> list[Path]:
    """The files a scenario inherits from through ``base``, nearest first."""
    from simcity.config.reading import base_chain
    from simcity.config.scenario import scenario_file

    return base_chain(scenario_file(name_or_path))
