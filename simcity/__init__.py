"""simcity: a smart-city monitoring simulator that bills the carbon of its own compute.

The world (`simcity.world`) and its parts: scenarios, city graphs, traffic equilibrium,
electric demand and grid carbon. `simcity` never imports `agents` or torch.
"""

from simcity.city.graph import City
from simcity.city.tntp import read_tntp, read_tntp_flows
from simcity.config.scenario import Scenario, load_scenario
from simcity.errors import SimcityError

__all__ = ["City", "Scenario", "SimcityError", "load_scenario", "read_tntp", "read_tntp_flows"]
__version__ = "0.1.0"


def _register() -> None:
    import gymnasium

    # No max_episode_steps here: an episode is the scenario's day, so each env's spec says
    # its own (`CityEnv.spec`: 96 for the default downtown) and the env truncates the day
    # itself; `gymnasium.make(..., max_episode_steps=k)` still adds a TimeLimit of k.
    if "simcity/CityMonitoring-v0" not in gymnasium.registry:
        gymnasium.register("simcity/CityMonitoring-v0", entry_point="simcity.env:CityEnv")
    if "simcity/CityMonitoringMO-v0" not in gymnasium.registry:
        # A vector reward: Gymnasium's passive checker would warn that it is not a float
        # at every make, so it is off, as `mo_gymnasium.make` turns it off.
        gymnasium.register(
            "simcity/CityMonitoringMO-v0",
            entry_point="simcity.multi_objective:CityMOEnv",
            disable_env_checker=True,
        )


_register()
