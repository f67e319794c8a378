"""``emissions.csv``: the simulated compute of a run in CodeCarbon's columns and units.

CodeCarbon (the ``codecarbon`` package) appends one row per tracked run to an
``emissions.csv`` that dashboards and notebooks already read. `emissions_rows` writes one
row per simulated episode (a day, usually) in the same columns, in the same order and the
same units, for the GPU work that simcity bills: the monitoring analytics and the policy.

Filled: ``timestamp`` (the simulated end of the episode, local time of the city, in
CodeCarbon's ``%Y-%m-%dT%H:%M:%S``), ``project_name`` (``simcity/<scenario>``),
``run_id`` (a UUID the scenario's name, the policy and the seed determine), ``duration``
(simulated seconds), ``emissions`` (kg CO2eq), ``emissions_rate`` (kg/s), ``gpu_power``
(mean power at the devices over the episode, W), ``gpu_energy`` and ``energy_consumed``
(kWh, PUE included, as CodeCarbon multiplies what it measures by its ``pue``),
``country_name`` (from the scenario's time zone), ``region`` (the scenario's IANA time
zone), ``gpu_count`` (most devices powered on at once), ``gpu_model`` (``N x <device
profile>``), ``longitude`` and ``latitude`` (the city's centre: the data centre is taken
to be in the city), ``tracking_mode`` (``machine``: whole devices are billed, idle power
included) and ``pue``.

Empty, as simcity does not model or know them: CPU and RAM power and energy, the
three-letter ``country_iso_code``, ``cloud_provider``, ``cloud_region``, ``on_cloud``,
``os``, ``python_version``, ``codecarbon_version``, ``cpu_count``, ``cpu_model`` and
``ram_total_size``. The device pool's energy is in the ``gpu_`` columns whatever its
profile (also for the CPU-server profile).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from simcity.city.graph import City
from simcity.config.scenario import Scenario
from simcity.records.files import write_atomic

CODECARBON_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "project_name",
    "run_id",
    "duration",  # s
    "emissions",  # kg CO2eq
    "emissions_rate",  # kg CO2eq / s
    "cpu_power",  # W
    "gpu_power",  # W
    "ram_power",  # W
    "cpu_energy",  # kWh
    "gpu_energy",  # kWh
    "ram_energy",  # kWh
    "energy_consumed",  # kWh
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",  # GB
    "tracking_mode",
    "on_cloud",
    "pue",
)
"""CodeCarbon's ``emissions.csv`` header (versions 2.2 to 2.8), in its order."""

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
_J_PER_KWH = 3.6e6
_G_PER_KG = 1000.0
_RUN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "simcity/emissions")


def emissions_row(
    scenario: Scenario,
    steps: Sequence[Mapping[str, Any]],
    *,
    seed: int,
    policy: str,
    city: City | None = None,
) -> dict[str, Any]:
    """One episode's row: ``steps`` are its step infos (or `StepRecord.as_dict()`).

    Two 15-minute steps, 0.3 and 0.6 kWh (PUE 1.2 included), 100 and 200 gCO2:

    >>> from simcity.config.scenario import load_scenario
    >>> steps = [{"compute_kwh": 0.3, "compute_gco2": 100.0, "gpus_on": 1},
    ...          {"compute_kwh": 0.6, "compute_gco2": 200.0, "gpus_on": 2}]
    >>> row = emissions_row(load_scenario("tiny"), steps, seed=0, policy="risk")
    >>> row["timestamp"], row["duration"], row["emissions"], round(row["energy_consumed"], 12)
    ('2022-07-12T00:30:00', 1800.0, 0.3, 0.9)
    >>> round(row["gpu_power"], 9), row["gpu_count"], row["gpu_model"], row["cpu_energy"]
    (1500.0, 2, '2 x h100_sxm', '')
    """
    time, compute = scenario.time, scenario.compute
    duration_s = len(steps) * time.dt_min * 60.0
    energy_kwh = float(sum(step["compute_kwh"] for step in steps))
    emissions_kg = float(sum(step["compute_gco2"] for step in steps)) / _G_PER_KG
    device_kwh = energy_kwh / compute.pue
    num_gpus = max((int(step["gpus_on"]) for step in steps), default=0)
    start = dt.datetime.combine(time.date, dt.time()) + dt.timedelta(hours=time.start_hour)
    end = start + dt.timedelta(seconds=duration_s)
    row: dict[str, Any] = dict.fromkeys(CODECARBON_COLUMNS, "")
    row.update(
        timestamp=end.strftime(TIMESTAMP_FORMAT),
        project_name=f"simcity/{scenario.name}",
        run_id=str(uuid.uuid5(_RUN_NAMESPACE, f"{scenario.name}/{policy}/{seed}")),
        duration=duration_s,
        emissions=emissions_kg,
        emissions_rate=emissions_kg / duration_s if duration_s > 0 else 0.0,
        gpu_power=device_kwh * _J_PER_KWH / duration_s if duration_s > 0 else 0.0,
        gpu_energy=energy_kwh,
        energy_consumed=energy_kwh,
        country_name=country_name(time.timezone),
        region=time.timezone,
        gpu_count=num_gpus,
        gpu_model=f"{num_gpus} x {compute.device}",
        tracking_mode="machine",
        pue=compute.pue,
    )
    if city is not None and city.num_nodes:
        row.update(
            longitude=round(float(city.lon.mean()), 4), latitude=round(float(city.lat.mean()), 4)
        )
    return row


def emissions_rows(
    scenario: Scenario,
    episodes: Sequence[tuple[int, Sequence[Mapping[str, Any]]]],
    *,
    policy: str,
    city: City | None = None,
) -> list[dict[str, Any]]:
    """One `emissions_row` per ``(seed, steps)`` episode, in order."""
    return [
        emissions_row(scenario, steps, seed=seed, policy=policy, city=city)
        for seed, steps in episodes
    ]


def emissions_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text: CodeCarbon's header, then the rows (floats at full precision)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CODECARBON_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_emissions(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write `emissions_csv` of ``rows`` to ``path`` atomically."""
    write_atomic(path, emissions_csv(rows))


@cache
def country_name(timezone: str) -> str:
    """The country of an IANA time zone, from the tz database's own tables ('' if none).

    >>> country_name("America/Chicago"), country_name("Europe/Vienna"), country_name("UTC")
    ('United States', 'Austria', '')
    """
    try:
        tables = resources.files("tzdata").joinpath("zoneinfo")
        zones = tables.joinpath("zone.tab").read_text(encoding="utf-8")
        names = tables.joinpath("iso3166.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return ""
    code = next((f[0] for f in _table(zones) if len(f) > 2 and f[2] == timezone), "")
    return next((f[1] for f in _table(names) if len(f) > 1 and f[0] == code), "")


def _table(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
