"""The city section of a scenario: generated (grid, ring-radial, random geometric), TNTP,
GraphML, OpenStreetMap or a city folder (nodes and links CSV), with its people, jobs,
zones and road classes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simcity.config.base import Frozen, NonNegative, Positive, resolve_path

Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]


class RoadConfig(Frozen):
    """Road classes of generated cities: local streets and faster arterials."""

    speed_kmh: Positive = 30.0
    lanes: Annotated[int, Field(ge=1)] = 1
    arterial_speed_kmh: Positive = 50.0
    arterial_lanes: Annotated[int, Field(ge=1)] = 2
    lane_capacity_veh_h: Positive = 900.0
    bpr_b: NonNegative = 0.15
    bpr_power: Annotated[float, Field(ge=1)] = 4.0


class _PeopledCity(Frozen):
    """People, jobs, zones and road classes of a city whose graph carries none."""

    population: NonNegative = 100_000.0
    jobs: NonNegative = 80_000.0
    cbd_km: Positive = 1.5
    """Jobs and people thin out from the centre over this distance."""
    zone_share: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Share of nodes that are traffic zones; the rest hand their people to the nearest."""
    roads: RoadConfig = RoadConfig()


class _GeneratedCity(_PeopledCity):
    origin_lon: Lon
    origin_lat: Lat


class GridCity(_GeneratedCity):
    source: Literal["grid"]
    rows: Annotated[int, Field(ge=1)]
    cols: Annotated[int, Field(ge=1)]
    spacing_km: Positive = 0.25
    arterial_every: Annotated[int, Field(ge=1)] = 4


class RingRadialCity(_GeneratedCity):
    source: Literal["ring_radial"]
    num_rings: Annotated[int, Field(ge=1)]
    num_spokes: Annotated[int, Field(ge=3)]
    ring_spacing_km: Positive = 0.8


class RandomGeometricCity(_GeneratedCity):
    source: Literal["random_geometric"]
    num_nodes: Annotated[int, Field(ge=1)]
    radius_km: Positive = 3.0
    """Nodes fall uniformly in a disc of this radius."""
    link_km: Positive = 0.6
    """Nodes closer than this are joined (plus a spanning tree, so the city is connected)."""


class TntpCity(Frozen):
    source: Literal["tntp"]
    path: Path
    origin_lon: Lon | None = None
    origin_lat: Lat | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _folder(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(str(value), info, folder=True)


class GraphmlCity(_PeopledCity):
    source: Literal["graphml"]
    path: Path

    @field_validator("path", mode="before")
    @classmethod
    def _file(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(str(value), info, folder=False)


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
    radius_km: Positive | None = None
    """Or only roads within this distance (a square of this half-side) of the centre."""
    zones: Path | None = None
    """GeoJSON or CSV of zones with population and employment."""
    zone_share: Annotated[float, Field(gt=0, le=1)] = 0.25
    """Without ``zones``: the busiest share of peopled intersections that are zones."""
    bpr_b: NonNegative = 0.15
    bpr_power: Annotated[float, Field(ge=1)] = 4.0

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
