"""People, jobs, land use and traffic zones for a road graph read from OpenStreetMap.

With a **zones file** (GeoJSON features or CSV rows carrying ``population`` and
``employment`` or ``jobs``), each zone's people and jobs go to the intersection nearest its
point (a Point, or the centroid of a Polygon's outer ring; CSV: ``lon``, ``lat``), and those
intersections are the traffic zones.

Without one, they come from the extract's **buildings** (closed ways tagged ``building``;
multipolygon relations are skipped): floor area = footprint x ``building:levels`` (where
missing, the median of the extract's tagged buildings, else 1). Residential types
(`RESIDENTIAL_BUILDINGS`) house one resident per `M2_PER_RESIDENT`; workplace types
(`WORK_BUILDINGS`) hold one job per `M2_PER_JOB` (`M2_PER_INDUSTRIAL_JOB` for industrial and
warehouse); other buildings (``yes`` and the rest) take the land use they stand in
(``landuse=residential`` -> residents, ``commercial``/``retail`` -> jobs, ``industrial`` ->
industrial jobs) and outside any land use are half homes, half workplaces. Garages, sheds,
roofs and the like (`EMPTY_BUILDINGS`) hold nobody. An extract with no buildings falls back
on its land-use areas at `LAND_USE_DENSITY_PER_KM2`. Each building's people and jobs go to
the nearest intersection; the busiest ``zone_share`` of the peopled intersections are the
traffic zones (the demand model hands the others' people to their nearest zone).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simcity.city.graph import (
    NODE_IS_ZONE,
    NODE_JOBS,
    NODE_LAND_USE,
    NODE_LAT,
    NODE_LON,
    NODE_POPULATION,
    NODE_THROUGH,
)
from simcity.city.osm import OsmData, Polygon
from simcity.errors import SimcityError
from simcity.safe_io import read_text

# Dwelling floor area per resident: about 40 m2 in Finland (Statistics Finland, Dwellings
# and housing conditions 2022) and in much of Europe; office space per worker is commonly
# planned at 15-30 m2 gross, warehouses and plants hold far fewer.
M2_PER_RESIDENT = 40.0
M2_PER_JOB = 30.0
M2_PER_INDUSTRIAL_JOB = 100.0
RESIDENTIAL_BUILDINGS = frozenset(
    {"residential", "apartments", "house", "detached", "semidetached_house", "terrace"}
    | {"dormitory", "bungalow", "farm", "cabin"}
)
WORK_BUILDINGS = frozenset(
    {"commercial", "office", "retail", "supermarket", "hotel", "public", "civic", "government"}
    | {"school", "university", "college", "kindergarten", "hospital", "train_station"}
    | {"transportation", "museum", "church", "cathedral", "chapel", "kiosk", "service"}
)
INDUSTRIAL_BUILDINGS = frozenset({"industrial", "warehouse", "manufacture", "factory"})
EMPTY_BUILDINGS = frozenset(
    {"garage", "garages", "shed", "roof", "hut", "carport", "ruins", "construction"}
    | {"entrance", "underpass_entrance", "tower", "ship", "bunker", "glasshouse"}
)
# (residents, jobs, industrial jobs) per km2 of land use, when an extract has no buildings.
LAND_USE_DENSITY_PER_KM2: dict[str, tuple[float, float]] = {
    "residential": (8000.0, 0.0),
    "commercial": (0.0, 10000.0),
    "retail": (0.0, 10000.0),
    "industrial": (0.0, 2000.0),
}
ZONES_EXPECTED = (
    "a GeoJSON FeatureCollection or a CSV (lon, lat) with population and employment per zone"
)
_KM_PER_DEG = 111.32


if TYPE_CHECKING:
    import networkx as nx


def place_people(
    graph: nx.DiGraph,
    osm: OsmData | None,
    *,
    zones_path: Path | None = None,
    zone_share: float = 0.25,
    file: str | Path = "<osm>",
) -> None:
    """Set people, jobs, land use and zones on every node of ``graph`` (in place).

    ``osm`` (its buildings and land use) is needed only without ``zones_path``.
    """
    from scipy.spatial import cKDTree

    nodes = list(graph.nodes)
    lon = np.array([graph.nodes[n][NODE_LON] for n in nodes])
    lat = np.array([graph.nodes[n][NODE_LAT] for n in nodes])
    lat0 = float(np.mean(lat))
    tree = cKDTree(np.column_stack(_km(lon, lat, lat0)))
    if zones_path is not None:
        points, pop, jobs = read_zones(zones_path)
        _, nearest = tree.query(np.column_stack(_km(points[:, 0], points[:, 1], lat0)))
        node_pop = np.bincount(nearest, weights=pop, minlength=len(nodes))
        node_jobs = np.bincount(nearest, weights=jobs, minlength=len(nodes))
        zones = np.zeros(len(nodes), dtype=bool)
        zones[nearest] = True
    else:
        points, pop, jobs = building_people(osm or OsmData())
        if pop.sum() + jobs.sum() <= 0:
            raise SimcityError(
                "no buildings or land use to place people and jobs",
                file=file,
                field="city.zones",
                expected="buildings or land use in the extract, or a zones file",
            )
        _, nearest = tree.query(np.column_stack(_km(points[:, 0], points[:, 1], lat0)))
        node_pop = np.bincount(nearest, weights=pop, minlength=len(nodes))
        node_jobs = np.bincount(nearest, weights=jobs, minlength=len(nodes))
        activity = node_pop + node_jobs
        peopled = np.flatnonzero(activity > 0)
        num_zones = max(1, round(zone_share * len(peopled)))
        order = peopled[np.lexsort((peopled, -activity[peopled]))]  # busiest first, stable
        zones = np.zeros(len(nodes), dtype=bool)
        zones[order[:num_zones]] = True
    share = node_jobs / np.maximum(node_jobs + node_pop, 1e-12)
    land_use = np.where(share > 0.65, "commercial", np.where(share < 0.3, "residential", "mixed"))
    for i, node in enumerate(nodes):
        data = graph.nodes[node]
        data[NODE_POPULATION] = float(node_pop[i])
        data[NODE_JOBS] = float(node_jobs[i])
        data[NODE_LAND_USE] = str(land_use[i])
        data[NODE_IS_ZONE] = bool(zones[i])
        data[NODE_THROUGH] = True


def _km(lon: np.ndarray, lat: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    return lon * _KM_PER_DEG * np.cos(np.radians(lat0)), lat * _KM_PER_DEG


def _area_centroid(polygon: Polygon) -> tuple[float, float, float]:
    """Area (m2) and centroid (lon, lat) of a closed ring, by the shoelace formula."""
    lat0 = float(polygon.lat.mean())
    x, y = _km(polygon.lon, polygon.lat, lat0)
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]
    area = cross.sum() / 2.0
    if abs(area) < 1e-12:
        return 0.0, float(polygon.lon.mean()), float(polygon.lat.mean())
    cx = ((x[:-1] + x[1:]) * cross).sum() / (6.0 * area)
    cy = ((y[:-1] + y[1:]) * cross).sum() / (6.0 * area)
    lon = cx / (_KM_PER_DEG * np.cos(np.radians(lat0)))
    return abs(area) * 1e6, float(lon), float(cy / _KM_PER_DEG)


def _inside(lon: float, lat: float, polygon: Polygon) -> bool:
    """Ray casting: whether a point lies inside a closed ring."""
    x, y = polygon.lon, polygon.lat
    crosses = (y[:-1] > lat) != (y[1:] > lat)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x[:-1] + (lat - y[:-1]) * (x[1:] - x[:-1]) / (y[1:] - y[:-1])
    return bool(np.count_nonzero(crosses & (lon < at)) % 2)


def _levels(tags: dict[str, str]) -> float | None:
    try:
        levels = float(tags.get("building:levels", ""))
    except ValueError:
        return None
    return levels if 0 < levels < 200 else None


def building_people(osm: OsmData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (B, 2) lon/lat with residents (B,) and jobs (B,), by the module's rule."""
    if not osm.buildings:
        return _land_use_people(osm)
    tagged = [v for b in osm.buildings if (v := _levels(b.tags)) is not None]
    default_levels = float(np.median(tagged)) if tagged else 1.0
    uses = [(p, _area_centroid(p)) for p in osm.land_use]
    points, pop, jobs = [], [], []
    for building in osm.buildings:
        kind = building.tags.get("building", "yes")
        area_m2, lon, lat = _area_centroid(building)
        floor_m2 = area_m2 * (_levels(building.tags) or default_levels)
        if kind in EMPTY_BUILDINGS:
            continue
        if kind in RESIDENTIAL_BUILDINGS:
            people = (floor_m2 / M2_PER_RESIDENT, 0.0)
        elif kind in WORK_BUILDINGS:
            people = (0.0, floor_m2 / M2_PER_JOB)
        elif kind in INDUSTRIAL_BUILDINGS:
            people = (0.0, floor_m2 / M2_PER_INDUSTRIAL_JOB)
        else:
            use = next((p.tags["landuse"] for p, _ in uses if _inside(lon, lat, p)), None)
            if use == "residential":
                people = (floor_m2 / M2_PER_RESIDENT, 0.0)
            elif use in ("commercial", "retail"):
                people = (0.0, floor_m2 / M2_PER_JOB)
            elif use == "industrial":
                people = (0.0, floor_m2 / M2_PER_INDUSTRIAL_JOB)
            else:
                people = (floor_m2 / M2_PER_RESIDENT / 2, floor_m2 / M2_PER_JOB / 2)
        points.append((lon, lat))
        pop.append(people[0])
        jobs.append(people[1])
    return np.array(points).reshape(-1, 2), np.array(pop), np.array(jobs)


def _land_use_people(osm: OsmData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points, pop, jobs = [], [], []
    for polygon in osm.land_use:
        density = LAND_USE_DENSITY_PER_KM2.get(polygon.tags.get("landuse", ""))
        if density is None:
            continue
        area_m2, lon, lat = _area_centroid(polygon)
        points.append((lon, lat))
        pop.append(density[0] * area_m2 / 1e6)
        jobs.append(density[1] * area_m2 / 1e6)
    return np.array(points).reshape(-1, 2), np.array(pop), np.array(jobs)


def read_zones(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zone points (Z, 2) lon/lat, population (Z,) and jobs (Z,) of a zones file."""
    text = read_text(path, expected=ZONES_EXPECTED)
    if path.suffix.lower() in (".geojson", ".json"):
        rows = _geojson_rows(text, path)
    else:
        rows = _csv_rows(text, path)
    if not rows:
        raise SimcityError("no zones", file=path, expected=ZONES_EXPECTED)
    table = np.array(rows, dtype=float)  # (Z, 4)
    bad = ~np.isfinite(table).all(axis=1) | (table[:, 2:] < 0).any(axis=1)
    bad |= (np.abs(table[:, 0]) > 180) | (np.abs(table[:, 1]) > 90)
    if bad.any():
        raise SimcityError(
            f"zone {int(np.flatnonzero(bad)[0]) + 1} has a bad point, population or employment",
            file=path,
            expected="WGS84 points and finite numbers >= 0",
        )
    if table[:, 2:].sum() <= 0:
        raise SimcityError("no population or employment", file=path, expected=ZONES_EXPECTED)
    return table[:, :2], table[:, 2], table[:, 3]


def _number(value: Any, path: Path, where: str, name: str) -> float:
    try:
        return float(value if value not in (None, "") else 0.0)
    except (TypeError, ValueError):
        raise SimcityError(
            f"{name} is {str(value)[:20]!r}", file=path, field=where, expected="a number"
        ) from None


def _csv_rows(text: str, path: Path) -> list[tuple[float, float, float, float]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    jobs_key = "employment" if "employment" in header else "jobs"
    for column in ("lon", "lat", "population", jobs_key):
        if column not in header:
            raise SimcityError("missing column", file=path, field=column, expected=ZONES_EXPECTED)
    return [
        tuple(  # type: ignore[misc]
            _number(row[c], path, f"line {reader.line_num}", c)
            for c in ("lon", "lat", "population", jobs_key)
        )
        for row in reader
    ]


def _geojson_rows(text: str, path: Path) -> list[tuple[float, float, float, float]]:
    try:
        features = json.loads(text)["features"]
        if not isinstance(features, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise SimcityError(
            "not a GeoJSON FeatureCollection", file=path, expected=ZONES_EXPECTED
        ) from None
    rows = []
    for i, feature in enumerate(features):
        where = f"features[{i}]"
        try:
            props, geometry = feature["properties"], feature["geometry"]
            kind, coords = geometry["type"], geometry["coordinates"]
            if kind == "Point":
                lon, lat = float(coords[0]), float(coords[1])
            else:
                ring = coords[0] if kind == "Polygon" else coords[0][0]
                if kind not in ("Polygon", "MultiPolygon"):
                    raise TypeError(kind)
                ring_arr = np.asarray(ring, dtype=float)[:, :2]
                _, lon, lat = _area_centroid(Polygon(ring_arr[:, 0], ring_arr[:, 1], {}))
        except (KeyError, TypeError, ValueError, IndexError):
            raise SimcityError(
                "is not a Point or Polygon feature with properties",
                file=path,
                field=where,
                expected=ZONES_EXPECTED,
            ) from None
        jobs = props.get("employment", props.get("jobs"))
        if "population" not in props or jobs is None:
            raise SimcityError(
                "has no population and employment", file=path, field=where, expected=ZONES_EXPECTED
            )
        rows.append(
            (
                lon,
                lat,
                _number(props["population"], path, where, "population"),
                _number(jobs, path, where, "employment"),
            )
        )
    return rows
