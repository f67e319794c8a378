"""Scenario files: TOML loaded once into frozen, validated models.

A scenario names a city (generated, TNTP or GraphML), its day (date, time zone, step),
traffic demand, electric demand, weather, grid carbon intensity and scheduled events.
A file may start from another with ``base = "other.toml"`` and change only some keys.
Nothing below this module sees a raw dict.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from simcity.config.base import Frozen, NonNegative, Positive, Share, resolve_path
from simcity.config.city import (
    CityConfig,
    Lat,
    Lon,
)
from simcity.config.monitoring import (
    ComputeConfig,
    IncidentConfig,
    MonitoringConfig,
    RewardConfig,
    SensorConfig,
)
from simcity.errors import SimcityError

ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
MAX_NAME = 200


# --- time --------------------------------------------------------------------------


class TimeConfig(Frozen):
    """The simulated day: local date and time zone, decision step and length."""

    date: dt.date = dt.date(2022, 7, 12)
    timezone: str = "UTC"
    dt_min: Annotated[float, Field(gt=0, le=1440)] = 15.0
    num_steps: Annotated[int, Field(ge=1, le=100_000)] = 96
    start_hour: Annotated[float, Field(ge=0, lt=24)] = 0.0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @property
    def duration_min(self) -> float:
        return self.dt_min * self.num_steps


# --- traffic, energy, weather, carbon ----------------------------------------------


class DayProfile(Frozen):
    """Demand through the day, as a share of the base OD matrix (1.0 = base hour)."""

    night_level: NonNegative = 0.08
    midday_level: NonNegative = 0.55
    am_level: NonNegative = 1.0
    pm_level: NonNegative = 1.0
    am_peak_h: Annotated[float, Field(ge=0, lt=24)] = 8.0
    pm_peak_h: Annotated[float, Field(ge=0, lt=24)] = 17.5
    peak_width_h: Positive = 1.2


class TrafficConfig(Frozen):
    demand: Literal["gravity", "tntp"] = "gravity"
    base_trips_veh_h: NonNegative = 20_000.0
    """Gravity model: total zone-to-zone trips in the base hour."""
    gravity_decay_per_min: NonNegative = 0.08
    demand_scale: NonNegative = 1.0
    rel_gap: Annotated[float, Field(gt=0, lt=1)] = 1e-3
    max_iterations: Annotated[int, Field(ge=2)] = 200
    method: Literal["fw", "cfw", "bfw"] = "bfw"
    incident_rel_gap: Annotated[float, Field(gt=0, lt=1)] = 1e-2
    """Gap for re-routing around incident capacity cuts, from that step's baseline."""
    incident_max_iterations: Annotated[int, Field(ge=2)] = 4
    solve_every_steps: Annotated[int, Field(ge=1)] = 1
    """Traffic clock: one equilibrium per this many steps, at their mean demand, held
    through them (big cities: 4 steps of 15 min solve hourly)."""
    path_workers: Annotated[int, Field(ge=1, le=256)] = 1
    """Threads for the shortest-path searches; results are the same for any number."""
    profile: DayProfile = DayProfile()


class EnergyConfig(Frozen):
    kw_per_resident: NonNegative = 0.45
    kw_per_job: NonNegative = 1.1
    comfort_c: Annotated[float, Field(ge=-60, le=60)] = 21.0
    cooling_per_deg_c: NonNegative = 0.03
    heating_per_deg_c: NonNegative = 0.02
    ev_share: Share = 0.08
    """Share of arriving cars that plug in."""
    charger_kw: NonNegative = 7.2
    charge_duration_h: Positive = 2.0


class WeatherConfig(Frozen):
    temp_mean_c: Annotated[float, Field(ge=-60, le=60)] = 18.0
    temp_amplitude_c: Annotated[float, Field(ge=0, le=40)] = 5.0
    temp_peak_hour: Annotated[float, Field(ge=0, lt=24)] = 15.0


class ConstantCarbon(Frozen):
    source: Literal["constant"]
    intensity_g_per_kwh: NonNegative = 300.0


class DailyCarbon(Frozen):
    source: Literal["daily"]
    mean_g_per_kwh: NonNegative = 300.0
    amplitude_g_per_kwh: NonNegative = 100.0
    min_hour: Annotated[float, Field(ge=0, lt=24)] = 13.0


class TraceCarbon(Frozen):
    source: Literal["trace"]
    path: str
    """A CSV file (relative to the scenario file) or a bundled trace: "CISO" or "ERCO"."""
    column: str = "avg_CI"
    wrap_year: bool = True
    """Map the scenario date onto the trace's year by day of year."""

    @field_validator("path")
    @classmethod
    def _trace(cls, value: str, info: ValidationInfo) -> str:
        if value.upper() in BUNDLED_TRACES:
            return value.upper()
        return str(resolve_path(value, info, folder=False))


BUNDLED_TRACES = ("CISO", "ERCO")

CarbonConfig = Annotated[ConstantCarbon | DailyCarbon | TraceCarbon, Field(discriminator="source")]


class EventConfig(Frozen):
    """A crowd event (game, concert): trips to a place before it, away after, extra load."""

    name: str
    lon: Lon
    lat: Lat
    start: ClockTime
    end: ClockTime
    attendees: Annotated[int, Field(ge=0)]
    car_share: Share = 0.4
    """Attendees per car is folded in: vehicles = attendees * car_share."""
    arrival_window_h: Positive = 1.5
    departure_window_h: Positive = 1.0
    load_kw: NonNegative = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> EventConfig:
        if self.end <= self.start:
            raise ValueError(f"event ends ({self.end}) before it starts ({self.start})")
        return self

    @property
    def start_h(self) -> float:
        hours, minutes = self.start.split(":")
        return int(hours) + int(minutes) / 60

    @property
    def end_h(self) -> float:
        hours, minutes = self.end.split(":")
        return int(hours) + int(minutes) / 60


class Scenario(Frozen):
    """A whole scenario. Load with `load_scenario`; vary with ``model_copy(update=...)``."""

    name: str = Field(min_length=1, max_length=80)
    title: str = ""
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    time: TimeConfig = TimeConfig()
    city: CityConfig
    traffic: TrafficConfig = TrafficConfig()
    energy: EnergyConfig = EnergyConfig()
    weather: WeatherConfig = WeatherConfig()
    carbon: CarbonConfig = ConstantCarbon(source="constant")
    events: tuple[EventConfig, ...] = ()
    sensors: SensorConfig = SensorConfig()
    incidents: IncidentConfig = IncidentConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    compute: ComputeConfig = ComputeConfig()
    datacentre_carbon: CarbonConfig | None = None
    """The data centre's grid when it differs from the city's (same table as [carbon])."""
    reward: RewardConfig = RewardConfig()
    node_names: tuple[tuple[str, str], ...] = ()
    """Names of nodes for maps and reports, from the ``[node_names]`` table: node id =
    name. Ids are the city graph's: ``0``, ``1``, ... for generated cities, TNTP node
    numbers, GraphML node ids (whose own ``name`` tags are kept otherwise)."""

    @field_validator("node_names", mode="before")
    @classmethod
    def _named(cls, value: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(value, dict):
            value = list(value.items())
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in value
        ):
            raise ValueError("expected a table of node id = name")
        names = []
        for node, name in value:
            if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
                raise ValueError(f"node {node!r}: a name is 1 to {MAX_NAME} characters of text")
            if any(ord(c) < 32 or ord(c) == 127 for c in name):
                raise ValueError(f"node {node!r}: a name is one line without control characters")
            names.append((str(node), name))
        return tuple(names)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.traffic.demand == "tntp" and self.city.source != "tntp":
            raise ValueError('traffic.demand = "tntp" needs city.source = "tntp"')
        return self


# --- loading -----------------------------------------------------------------------


def bundled_dir() -> Path:
    """The folder of bundled scenario files (installed copy, else the source tree's)."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_bundled_scenarios"
    return installed if installed.is_dir() else package.parent / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files, sorted by name."""
    return {p.stem: p for p in sorted(bundled_dir().glob("*.toml"))}


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise SimcityError("scenario bases form a cycle", file=path, field="base")
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise SimcityError("no such scenario file", file=path) from None
    except tomllib.TOMLDecodeError as err:
        raise SimcityError(f"not valid TOML: {err}", file=path) from None
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise SimcityError("base is not a file name", file=path, field="base", expected="a string")
    parent = _read_toml((path.parent / base).resolve(), (*seen, path))
    return _merge(parent, raw)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_UNIONS = ("city", "carbon", "datacentre_carbon")
_TAGS = ("grid", "ring_radial", "random_geometric", "tntp", "graphml", "constant", "daily", "trace")


def _describe(error: ErrorDetails) -> tuple[str, str]:
    loc = [str(part) for part in error["loc"]]
    # Drop the tag pydantic adds inside a tagged union ("city.grid.rows" -> "city.rows").
    loc = [p for i, p in enumerate(loc) if not (i and loc[i - 1] in _UNIONS and p in _TAGS)]
    field = ".".join(loc) or "<top>"
    if error["type"] == "extra_forbidden":
        return field, "unknown key"
    if error["type"] == "missing":
        return field, "missing required key"
    got = error.get("input")
    text = str(error["msg"]).removeprefix("Value error, ")
    if not isinstance(got, dict):
        text += f" (got {got!r})"
    return field, text


def parse_scenario(raw: dict[str, Any], *, file: str | Path, base_dir: Path) -> Scenario:
    """Validate a raw mapping into a `Scenario`; errors name ``file`` and the field."""
    try:
        return Scenario.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as err:
        errors = err.errors()
        field, text = _describe(errors[0])
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SimcityError(text + more, file=file, field=field) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario from a TOML file, or a bundled one by name.

    >>> load_scenario("tiny").city.source
    'grid'
    """
    path = Path(name_or_path)
    if not path.is_file():
        bundled = bundled_scenarios()
        if str(name_or_path) not in bundled:
            raise SimcityError(
                "no such scenario file or bundled scenario",
                file=str(name_or_path),
                expected="a TOML file or one of: " + ", ".join(bundled),
            )
        path = bundled[str(name_or_path)]
    path = path.resolve()
    return parse_scenario(_read_toml(path), file=path, base_dir=path.parent)
