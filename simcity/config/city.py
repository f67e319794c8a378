"""The city section of a scenario: generated (grid, ring-radial, random geometric), TNTP,
GraphML, OpenStreetMap or a city folder (nodes and links CSV), with its people, jobs,
zones and road classes.

Ranges (and why): road speeds 1-300 km/h (a walking queue to a motorway); 1-16 lanes a
direction; a lane carries at most 5,000 veh/h (a freeway lane carries about 2,200);
distances 10 m-500 km; population and jobs at most 1e8 (the largest metropolitan areas
hold about 4e7 people); generated cities at most `MAX_NODES` nodes, and their arrays are
checked against memory (`simcity.config.sizes`) before anything is built.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import Field, ValidationInfo, field_validator, model_validator

from simcity.config.base import Count, Frozen, Lat, Lon, Real, resolve_path
from simcity.config.sizes import CitySize

MAX_NODES = 1_000_000
"""Most nodes of a generated city: 1e6 intersections is a large country's street web."""
MAX_SIDE = 10_000
"""Most rows, columns, rings or spokes of a generated city."""

MAX_ABS_LAT = 85.0
"""Generated cities lie within 85 degrees of the equator (as web maps do): their local
flat map (`simcity.city.generators.to_lonlat`) divides by cos(latitude)."""
KM_PER_DEG_LAT = 111.32
"""As in `simcity.city.generators` (which this layer may not import)."""

Speed = Annotated[Real, Interval(ge=1, le=300)]
Lanes = Annotated[Count, Interval(ge=1, le=16)]
Km = Annotated[Real, Interval(ge=0.01, le=500)]
"""A distance in a city: 10 m (two junctions) to 500 km (a region)."""
People = Annotated[Real, Interval(ge=0, le=1e8)]


class RoadConfig(Frozen):
    """Road classes of generated cities: local streets and faster arterials."""

    speed_kmh: Speed = 30.0
    lanes: Lanes = 1
    arterial_speed_kmh: Speed = 50.0
    arterial_lanes: Lanes = 2
    lane_capacity_veh_h: Annotated[Real, Interval(ge=1, le=5_000)] = 900.0
    bpr_b: Annotated[Real, Interval(ge=0, le=10)] = 0.15
    """BPR delay factor (0.15 is the classic value; 10 is a wall of traffic)."""
    bpr_power: Annotated[Real, Interval(ge=1, le=10)] = 4.0
    """BPR exponent (4 is classic; (v/c)**power must stay finite for v/c up to 1e4)."""


class _PeopledCity(Frozen):
    """People, jobs, zones and road classes of a city whose graph carries none."""

    population: People = 100_000.0
    jobs: People = 80_000.0
    cbd_km: Km = 1.5
    """Jobs and people thin out from the centre over this distance."""
    zone_share: Annotated[Real, Interval(ge=1e-6, le=1)] = 1.0
    """Share of nodes that are traffic zones; the rest hand their people to the nearest
    (at least one zone: below 1e-6 no city of `MAX_NODES` nodes would have one)."""
    roads: RoadConfig = RoadConfig()


class _GeneratedCity(_PeopledCity):
    origin_lon: Lon
    origin_lat: Lat

    def _zones(self, num_nodes: int) -> int:
        return max(1, round(self.zone_share * num_nodes))

    def _check_layout(self, num_nodes: int, half_x_km: float, half_y_km: float) -> None:
        """At least one road (2 nodes), and every node on the globe: lon within +-180,
        lat within +-`MAX_ABS_LAT`, for a layout reaching ``half_*_km`` from the origin."""
        if num_nodes < 2:
            raise ValueError("generates 1 node: a city needs at least 2 (one road)")
        half_lat = half_y_km / KM_PER_DEG_LAT
        lat = max(abs(self.origin_lat - half_lat), abs(self.origin_lat + half_lat))
        if lat > MAX_ABS_LAT:
            raise ValueError(
                f"reaches latitude {lat:.1f}, beyond the {MAX_ABS_LAT:g} degrees allowed "
                "(move origin_lat or shrink the city)"
            )
        lon_scale = KM_PER_DEG_LAT * math.cos(math.radians(lat))
        lon = abs(self.origin_lon) + half_x_km / lon_scale
        if lon > 180.0:
            raise ValueError(
                f"reaches longitude {lon:.1f}, beyond 180 degrees "
                "(move origin_lon or shrink the city)"
            )


class GridCity(_GeneratedCity):
    source: Literal["grid"]
    rows: Annotated[Count, Interval(ge=1, le=MAX_SIDE)]
    cols: Annotated[Count, Interval(ge=1, le=MAX_SIDE)]
    spacing_km: Km = 0.25
    arterial_every: Annotated[Count, Interval(ge=1, le=MAX_SIDE)] = 4

    @model_validator(mode="after")
    def _fits(self) -> GridCity:
        half = ((self.cols - 1) / 2 * self.spacing_km, (self.rows - 1) / 2 * self.spacing_km)
        self._check_layout(self.rows * self.cols, *half)
        return self

    def size(self) -> CitySize:
        """Nodes, directed links and zones of the city this section generates."""
        nodes = self.rows * self.cols
        links = 2 * (self.rows * (self.cols - 1) + self.cols * (self.rows - 1))
        return CitySize(nodes, links, self._zones(nodes))


class RingRadialCity(_GeneratedCity):
    source: Literal["ring_radial"]
    num_rings: Annotated[Count, Interval(ge=1, le=MAX_SIDE)]
    num_spokes: Annotated[Count, Interval(ge=3, le=MAX_SIDE)]
    ring_spacing_km: Km = 0.8

    @model_validator(mode="after")
    def _fits(self) -> RingRadialCity:
        reach = self.num_rings * self.ring_spacing_km
        self._check_layout(self.num_rings * self.num_spokes + 1, reach, reach)
        return self

    def size(self) -> CitySize:
        """Nodes, directed links and zones of the city this section generates."""
        nodes = self.num_rings * self.num_spokes + 1
        return CitySize(nodes, 4 * self.num_rings * self.num_spokes, self._zones(nodes))


class RandomGeometricCity(_GeneratedCity):
    source: Literal["random_geometric"]
    num_nodes: Annotated[Count, Interval(ge=1, le=MAX_NODES)]
    radius_km: Km = 3.0
    """Nodes fall uniformly in a disc of this radius."""
    link_km: Km = 0.6
    """Nodes closer than this are joined (plus a spanning tree, so the city is connected)."""

    @model_validator(mode="after")
    def _fits(self) -> RandomGeometricCity:
        self._check_layout(self.num_nodes, self.radius_km, self.radius_km)
        return self

    def size(self) -> CitySize:
        """Nodes, expected directed links and zones of the city this section generates."""
        n = self.num_nodes
        # Two nodes uniform in a disc of radius R are closer than l with probability
        # about (l / R)^2 (exactly that for l << R; capped at 1): the expected links.
        near = n * (n - 1) * min(1.0, (self.link_km / self.radius_km) ** 2)
        return CitySize(n, math.ceil(near) + 2 * n, self._zones(n))


class TntpCity(Frozen):
    source: Literal["tntp"]
    path: Path
    origin_lon: Lon | None = None
    origin_lat: Lat | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _folder(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(value, info, folder=True)


class GraphmlCity(_PeopledCity):
    source: Literal["graphml"]
    path: Path

    @field_validator("path", mode="before")
    @classmethod
    def _file(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(value, info, folder=False)


GeneratedCity = GridCity | RingRadialCity | RandomGeometricCity


class OsmCity(Frozen):
    """An OpenStreetMap extract (``.osm.pbf`` or ``.osm``; needs the ``osm`` extra).

    Roads, one-ways, speeds, lanes and capacities follow `simcity.city.osm`; people and
    jobs come from ``zones`` when given, else from buildings (`simcity.city.osm_people`).
    """

    source: Literal["osm"]
    path: Path
    bbox: tuple[Lon, Lat, Lon, Lat] | None = None
    """Only roads inside [west, south, east, north] (degrees)."""
    centre_lon: Lon | None = None
    centre_lat: Lat | None = None
    radius_km: Annotated[Real, Interval(gt=0, le=500)] | None = None
    """Or only roads within this distance (a square of this half-side) of the centre."""
    zones: Path | None = None
    """GeoJSON or CSV of zones with population and employment."""
    zone_share: Annotated[Real, Interval(gt=0, le=1)] = 0.25
    """Without ``zones``: the busiest share of peopled intersections that are zones."""
    bpr_b: Annotated[Real, Interval(ge=0, le=10)] = 0.15
    bpr_power: Annotated[Real, Interval(ge=1, le=10)] = 4.0

    @field_validator("path", "zones", mode="before")
    @classmethod
    def _file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(str(value), info, folder=False)

    @model_validator(mode="after")
    def _one_area(self) -> OsmCity:
        centre = (self.centre_lon, self.centre_lat, self.radius_km)
        if any(v is not None for v in centre) and (
            any(v is None for v in centre) or self.bbox is not None
        ):
            raise ValueError("give bbox, or centre_lon, centre_lat and radius_km, not both")
        if self.bbox is not None and not (
            self.bbox[0] < self.bbox[2] and self.bbox[1] < self.bbox[3]
        ):
            raise ValueError("bbox must be [west, south, east, north] with west < east")
        return self


class NetworkCity(Frozen):
    """A city folder of ``nodes.csv`` and ``links.csv`` (`simcity.city.netcsv`): people,
    jobs, zones and road geometry included; the form the bundled real cities ship in."""

    source: Literal["network"]
    path: Path

    @field_validator("path", mode="before")
    @classmethod
    def _folder(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(str(value), info, folder=True)


CityConfig = Annotated[
    GridCity
    | RingRadialCity
    | RandomGeometricCity
    | TntpCity
    | GraphmlCity
    | OsmCity
    | NetworkCity,
    Field(discriminator="source"),
]
