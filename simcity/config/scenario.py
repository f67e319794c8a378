"""Scenario files: TOML loaded once into frozen, validated models.

A scenario names a city (generated, TNTP or GraphML), its day (date, time zone, step),
traffic demand, electric demand, weather, grid carbon intensity and scheduled events.
A file may start from another with ``base = "other.toml"`` and change only some keys.
Nothing below this module sees a raw dict.

Files are read by `simcity.config.reading` (guarded, bounded chains and nesting). Every
number has a physical range, stated beside its field, and a generated city's arrays are
checked against memory before anything is built.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import Interval
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from simcity.config.base import (
    MAX_LIST,
    ONE_LINE,
    ClockTime,
    Count,
    FieldError,
    Flag,
    Frozen,
    Hour,
    Lat,
    Lon,
    Name,
    Real,
    Share,
    Text,
    resolve_path,
)
from simcity.config.city import MAX_NODES, CityConfig, GeneratedCity
from simcity.config.monitoring import (
    ComputeConfig,
    IncidentConfig,
    MonitoringConfig,
    RewardConfig,
    SensorConfig,
)
from simcity.config.reading import (
    Origins,
    bundled_scenarios,
    describe_errors,
    origin,
    read_chain,
)
from simcity.config.reading import bundled_dir as bundled_dir  # re-exported
from simcity.config.sizes import check_footprint
from simcity.errors import SimcityError
from simcity.safe_io import excerpt

MAX_NAME = 200
MAX_DAY_MIN = 366 * 24 * 60
"""Longest episode: a (leap) year, the span of the carbon traces it maps onto."""
Level = Annotated[Real, Interval(ge=0, le=10)]
"""Demand as a share of the base hour: 10 times the base hour is beyond any real surge."""


# --- time --------------------------------------------------------------------------


class TimeConfig(Frozen):
    """The simulated day: local date and time zone, decision step and length."""

    date: dt.date = dt.date(2022, 7, 12)
    """Years 1900-2199: the span on which calendar and time-zone arithmetic is sound."""
    timezone: str = Field(default="UTC", max_length=64)
    dt_min: Annotated[Real, Interval(ge=0.1, le=1440)] = 15.0
    """A decision step: 6 seconds to a day (below, no monitoring decision is made)."""
    num_steps: Annotated[Count, Interval(ge=1, le=100_000)] = 96
    start_hour: Hour = 0.0

    @field_validator("date", mode="before")
    @classmethod
    def _a_date(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
            raise ValueError("expected a date, 2022-07-12 (a TOML date or that text)")
        return value

    @field_validator("date")
    @classmethod
    def _sound_year(cls, value: dt.date) -> dt.date:
        if not 1900 <= value.year <= 2199:
            raise ValueError(f"year {value.year} is outside 1900-2199")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone {excerpt(value)}") from None
        return value

    @model_validator(mode="after")
    def _at_most_a_year(self) -> TimeConfig:
        if self.duration_min > MAX_DAY_MIN:
            raise FieldError(
                "num_steps",
                f"{self.num_steps:,} steps of {self.dt_min:g} min last more than a year",
            )
        return self

    @property
    def duration_min(self) -> float:
        return self.dt_min * self.num_steps


# --- traffic, energy, weather, carbon ----------------------------------------------


class DayProfile(Frozen):
    """Demand through the day, as a share of the base OD matrix (1.0 = base hour)."""

    night_level: Level = 0.08
    midday_level: Level = 0.55
    am_level: Level = 1.0
    pm_level: Level = 1.0
    am_peak_h: Hour = 8.0
    pm_peak_h: Hour = 17.5
    peak_width_h: Annotated[Real, Interval(ge=0.05, le=24)] = 1.2
    """3 minutes to a whole day."""


Gap = Annotated[Real, Interval(ge=1e-9, lt=1)]
"""A relative gap: below 1e-9 it is rounding noise in the total travel time."""
Iterations = Annotated[Count, Interval(ge=2, le=100_000)]


class TrafficConfig(Frozen):
    demand: Literal["gravity", "tntp"] = "gravity"
    base_trips_veh_h: Annotated[Real, Interval(ge=0, le=1e7)] = 20_000.0
    """Gravity model: total zone-to-zone trips in the base hour (1e7 veh/h: several times
    the peak hour of the largest metropolitan areas)."""
    gravity_decay_per_min: Annotated[Real, Interval(ge=0, le=10)] = 0.08
    """At 10 per minute, demand is gone one minute away."""
    demand_scale: Level = 1.0
    rel_gap: Gap = 1e-3
    max_iterations: Iterations = 200
    method: Literal["fw", "cfw", "bfw"] = "bfw"
    incident_rel_gap: Gap = 1e-2
    """Gap for re-routing around incident capacity cuts, from that step's baseline."""
    incident_max_iterations: Iterations = 4
    solve_every_steps: Annotated[Count, Interval(ge=1, le=100_000)] = 1
    """Traffic clock: one equilibrium per this many steps, at their mean demand, held
    through them (big cities: 4 steps of 15 min solve hourly)."""
    path_workers: Annotated[Count, Interval(ge=1, le=256)] = 1
    """Threads for the shortest-path searches; results are the same for any number."""
    profile: DayProfile = DayProfile()


Celsius = Annotated[Real, Interval(ge=-60, le=60)]
"""Air temperatures ever measured lie within -90 and 57 C; cities within -60 and 60."""
PerDegree = Annotated[Real, Interval(ge=0, le=10)]
"""Share of load added per degree: 10 (1,000 % per degree) is no real building."""
Hours = Annotated[Real, Interval(ge=1 / 60, le=48)]
"""A duration from one minute to two days."""
Intensity = Annotated[Real, Interval(ge=0, le=2_000)]
"""Grid carbon intensity, g/kWh: lignite plants emit about 1,100-1,200; no grid 2,000."""


class EnergyConfig(Frozen):
    kw_per_resident: Annotated[Real, Interval(ge=0, le=100)] = 0.45
    """A resident draws about 0.5-1.5 kW on average; 100 kW is no household."""
    kw_per_job: Annotated[Real, Interval(ge=0, le=1_000)] = 1.1
    """1 MW per job bounds even a data centre's staff."""
    comfort_c: Celsius = 21.0
    cooling_per_deg_c: PerDegree = 0.03
    heating_per_deg_c: PerDegree = 0.02
    ev_share: Share = 0.08
    """Share of arriving cars that plug in."""
    charger_kw: Annotated[Real, Interval(ge=0, le=1_000)] = 7.2
    """Up to megawatt truck chargers."""
    charge_duration_h: Hours = 2.0


class WeatherConfig(Frozen):
    temp_mean_c: Celsius = 18.0
    temp_amplitude_c: Annotated[Real, Interval(ge=0, le=40)] = 5.0
    temp_peak_hour: Hour = 15.0


class ConstantCarbon(Frozen):
    source: Literal["constant"]
    intensity_g_per_kwh: Intensity = 300.0


class DailyCarbon(Frozen):
    source: Literal["daily"]
    mean_g_per_kwh: Intensity = 300.0
    amplitude_g_per_kwh: Intensity = 100.0
    min_hour: Hour = 13.0


class TraceCarbon(Frozen):
    source: Literal["trace"]
    path: str
    """A CSV file (relative to the scenario file) or a bundled trace: "CISO" or "ERCO"."""
    column: str = Field(default="avg_CI", min_length=1, max_length=200)
    wrap_year: Flag = True
    """Map the scenario date onto the trace's year by day of year."""

    @field_validator("path", mode="before")
    @classmethod
    def _trace(cls, value: Any, info: ValidationInfo) -> str:
        if isinstance(value, str) and value.upper() in BUNDLED_TRACES:
            return value.upper()
        return str(resolve_path(value, info, folder=False))


BUNDLED_TRACES = ("CISO", "ERCO")

CarbonConfig = Annotated[ConstantCarbon | DailyCarbon | TraceCarbon, Field(discriminator="source")]


class EventConfig(Frozen):
    """A crowd event (game, concert): trips to a place before it, away after, extra load."""

    name: Name
    lon: Lon
    lat: Lat
    start: ClockTime
    end: ClockTime
    attendees: Annotated[Count, Interval(ge=0, le=10_000_000)]
    """The largest one-day gatherings count a few million people."""
    car_share: Share = 0.4
    """Attendees per car is folded in: vehicles = attendees * car_share."""
    arrival_window_h: Hours = 1.5
    departure_window_h: Hours = 1.0
    load_kw: Annotated[Real, Interval(ge=0, le=1e6)] = 0.0
    """Up to 1 GW: a large power plant's output."""

    @model_validator(mode="after")
    def _ordered(self) -> EventConfig:
        if self.end <= self.start:
            raise FieldError("end", f"event ends ({self.end}) before it starts ({self.start})")
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

    name: str = Field(min_length=1, max_length=80, pattern=ONE_LINE)
    title: Text = ""
    description: Text = ""
    seed: Annotated[Count, Interval(ge=0, le=2**63 - 1)] = 0
    """Any int64 that is not negative (records and JSON readers keep 64-bit seeds)."""
    time: TimeConfig = TimeConfig()
    city: CityConfig
    traffic: TrafficConfig = TrafficConfig()
    energy: EnergyConfig = EnergyConfig()
    weather: WeatherConfig = WeatherConfig()
    carbon: CarbonConfig = ConstantCarbon(source="constant")
    events: tuple[EventConfig, ...] = Field(default=(), max_length=1_000)
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
        if len(value) > min(MAX_LIST, MAX_NODES):
            raise ValueError(f"names {len(value):,} nodes, more than the {MAX_LIST:,} allowed")
        names = []
        for node, name in value:
            node_id = excerpt(node)
            if not isinstance(node, (str, int)) or isinstance(node, bool):
                raise ValueError(f"node {node_id}: an id is text or a whole number")
            if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
                raise ValueError(f"node {node_id}: a name is 1 to {MAX_NAME} characters of text")
            if any(ord(c) < 32 or ord(c) == 127 for c in name):
                raise ValueError(f"node {node_id}: a name is one line without control characters")
            names.append((str(node), name))
        return tuple(names)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.traffic.demand == "tntp" and self.city.source != "tntp":
            raise FieldError("traffic.demand", 'demand = "tntp" needs city.source = "tntp"')
        if isinstance(self.city, GeneratedCity):
            size = self.city.size()
            if size.num_nodes > MAX_NODES:
                raise FieldError(
                    "city", f"generates {size.num_nodes:,} nodes, more than {MAX_NODES:,}"
                )
            try:
                check_footprint(size, self.time.num_steps, self.traffic.solve_every_steps)
            except ValueError as err:
                raise FieldError("city", str(err)) from None
        return self


# --- loading -----------------------------------------------------------------------


def parse_scenario(
    raw: dict[str, Any], *, file: str | Path, base_dir: Path, origins: Origins | None = None
) -> Scenario:
    """Validate a raw mapping into a `Scenario`; errors name the field and ``file`` (or,
    with ``origins``, the file of a ``base`` chain that set the field)."""
    try:
        return Scenario.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as err:
        field, text = describe_errors(err.errors())
        culprit = origin(field, origins or {}, Path(file))
        raise SimcityError(text, file=culprit, field=field) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario from a TOML file, or a bundled one by name.

    >>> load_scenario("tiny").city.source
    'grid'
    """
    path = scenario_file(name_or_path)
    raw, origins = read_chain(path)
    return parse_scenario(raw, file=path, base_dir=path.parent, origins=origins)


def scenario_file(name_or_path: str | Path) -> Path:
    """The resolved file of a scenario: a TOML file, or a bundled one by name."""
    text = str(name_or_path)
    bundled = bundled_scenarios()
    path = Path(name_or_path)
    if text in bundled and not _exists(path):
        path = bundled[text]
    elif not _exists(path):
        raise SimcityError(
            "no such scenario file or bundled scenario",
            file=text,
            expected="a TOML file or one of: " + ", ".join(bundled),
        )
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of symbolic links
        raise SimcityError("cannot be resolved (a loop of links?)", file=text) from None


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except (OSError, ValueError):
        return False
