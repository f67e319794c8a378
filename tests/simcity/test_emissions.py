"""``emissions.csv``: CodeCarbon's columns and units, filled with the simulated compute."""

from __future__ import annotations

import csv
import io
import uuid

import numpy as np
import pytest

from simcity.config.devices import device_profile
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.records.emissions import CODECARBON_COLUMNS, emissions_csv, emissions_row

# The header CodeCarbon 2.2-2.8 writes (copied from a published emissions.csv).
CODECARBON_HEADER = (
    "timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,gpu_power,"
    "ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,"
    "country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
    "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
    "ram_total_size,tracking_mode,on_cloud,pue"
)
EMPTY = (
    "cpu_power",
    "ram_power",
    "cpu_energy",
    "ram_energy",
    "country_iso_code",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "ram_total_size",
    "on_cloud",
)


def tiny_from(start_hour: float, num_steps: int, pue: float = 1.2) -> Scenario:
    scenario = load_scenario("tiny")
    time = scenario.time.model_copy(update={"start_hour": start_hour, "num_steps": num_steps})
    compute = scenario.compute.model_copy(update={"pue": pue})
    return scenario.model_copy(update={"time": time, "compute": compute})


def test_header_is_codecarbons() -> None:
    assert ",".join(CODECARBON_COLUMNS) == CODECARBON_HEADER
    assert emissions_csv([]) == CODECARBON_HEADER + "\n"


def test_row_by_hand() -> None:
    """Three 15-minute steps from 23:30: the episode ends at 00:15 the next day."""
    steps = [
        {"compute_kwh": 0.5, "compute_gco2": 150.0, "gpus_on": 1},
        {"compute_kwh": 1.0, "compute_gco2": 300.0, "gpus_on": 3},
        {"compute_kwh": 0.0, "compute_gco2": 0.0, "gpus_on": 0},
    ]
    row = emissions_row(tiny_from(23.5, 3, pue=1.25), steps, seed=7, policy="uniform")
    assert row["timestamp"] == "2022-07-13T00:15:00"
    assert row["project_name"] == "simcity/tiny"
    assert row["duration"] == 2700.0  # s
    assert row["emissions"] == 0.45  # kg: 450 g
    assert row["emissions_rate"] == pytest.approx(0.45 / 2700, rel=1e-15)
    assert row["gpu_energy"] == row["energy_consumed"] == 1.5  # kWh, PUE included
    # At the devices: 1.5 kWh / 1.25 = 1.2 kWh = 4.32 MJ over 2,700 s = 1,600 W.
    assert row["gpu_power"] == pytest.approx(1600.0, rel=1e-12)
    assert (row["gpu_count"], row["gpu_model"]) == (3, "3 x h100_sxm")
    assert (row["country_name"], row["region"]) == ("United States", "America/Chicago")
    assert (row["tracking_mode"], row["pue"]) == ("machine", 1.25)
    assert row["longitude"] == row["latitude"] == ""  # no city given
    assert all(row[key] == "" for key in EMPTY)


def test_run_id_is_a_uuid_that_the_run_determines() -> None:
    steps = [{"compute_kwh": 1.0, "compute_gco2": 1.0, "gpus_on": 1}]
    scenario = tiny_from(0.0, 1)

    def run_id(seed: int, policy: str) -> str:
        return str(emissions_row(scenario, steps, seed=seed, policy=policy)["run_id"])

    assert uuid.UUID(run_id(0, "risk")).version == 5
    assert run_id(0, "risk") == run_id(0, "risk")
    assert len({run_id(0, "risk"), run_id(1, "risk"), run_id(0, "uniform")}) == 3


def test_short_tiny_run_by_hand() -> None:
    """Eight steps of the uniform allocation: one H100 at a known busy share throughout."""
    scenario = tiny_from(6.0, 8)
    env = CityEnv(scenario)
    env.reset(seed=3)
    infos = [env.step(np.ones(17))[4] for _ in range(8)]
    row = emissions_row(scenario, infos, seed=3, policy="uniform", city=env.city)
    # 20 units x 16/17 on nodes, each 1.15e15 FLOP per minute, on an H100 busy at
    # 40% of its 989.4 TFLOP/s: under one GPU, so 70 W idle + 630 W x busy share.
    gpu = device_profile("h100_sxm")
    units = scenario.monitoring.budget_units * 16 / 17
    busy = units * scenario.compute.analytics_flop_per_unit_min / 60 / gpu.achievable_flop_s
    assert 0 < busy < 1
    power_w = gpu.idle_power_w + (gpu.max_power_w - gpu.idle_power_w) * busy
    assert row["gpu_power"] == pytest.approx(power_w, rel=1e-12)
    kwh = power_w * 8 * 900 / 3.6e6 * 1.2
    assert row["energy_consumed"] == pytest.approx(kwh, rel=1e-12)
    assert row["emissions"] == pytest.approx(kwh * 350 / 1000, rel=1e-12)  # tiny: 350 g/kWh
    assert row["duration"] == 8 * 900.0 and row["gpu_count"] == 1
    assert row["timestamp"] == "2022-07-12T08:00:00"
    assert row["longitude"] == round(float(env.city.lon.mean()), 4)
    assert row["latitude"] == round(float(env.city.lat.mean()), 4)
    assert -98 < row["longitude"] < -97.5 and 30 < row["latitude"] < 30.5  # Austin
    # Written and read back: the same header, every number at full precision.
    back = list(csv.DictReader(io.StringIO(emissions_csv([row, row]))))
    assert len(back) == 2 and list(back[0]) == list(CODECARBON_COLUMNS)
    for key in ("duration", "emissions", "emissions_rate", "gpu_power", "energy_consumed"):
        assert float(back[1][key]) == row[key]
    assert all(back[0][key] == "" for key in EMPTY)
