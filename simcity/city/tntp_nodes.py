"""Node coordinates of a TNTP folder: a ``_node.tntp`` file or a GeoJSON node layer.

Used by `simcity.city.tntp.read_tntp`. Coordinates that look like WGS84 are lon/lat;
planar ones are placed on the globe around an origin. A folder may hold several GeoJSON
layers (the Transportation Networks repository ships a link layer of LineStrings beside
the nodes for some networks): the node layer is the one of Points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from simcity.city.tntp_lines import node_id, numbered_lines, numbers
from simcity.errors import SimcityError
from simcity.safe_io import read_text

DEFAULT_EXTENT_KM = 10.0
"""Planar coordinates with no given scale are fitted so their longer side spans this."""
MAX_COORDINATE = 1e12
"""Planar node coordinates beyond this are no unit a map uses (and their span overflows)."""
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON_EQUATOR = 111.320


def node_coordinates(
    root: Path,
    num_nodes: int,
    origin_lon: float,
    origin_lat: float,
    scale_km_per_unit: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat (N,) of nodes 1..N from the node file or the GeoJSON, as the docs say."""
    node_files = sorted(root.glob("*_node.tntp"))
    geojson_files = sorted(root.glob("*.geojson"))
    planar = None
    if node_files:
        xy = _read_nodes(node_files[0], num_nodes)  # (N, 2)
        if _looks_wgs84(xy):
            return xy[:, 0], xy[:, 1]
        planar = xy
    if geojson_files:
        path, features = _node_layer(root, geojson_files)
        xy = _read_geojson(path, features, num_nodes)
        if not _looks_wgs84(xy):
            raise SimcityError(
                "coordinates are not lon/lat", file=path, expected="WGS84 Point coordinates"
            )
        return xy[:, 0], xy[:, 1]
    if planar is None:
        raise SimcityError(
            "no node coordinates", file=root, expected="a *_node.tntp or *.geojson file"
        )
    centre = (planar.max(axis=0) + planar.min(axis=0)) / 2  # (2,)
    if scale_km_per_unit is None:
        extent = float(np.ptp(planar, axis=0).max())
        scale_km_per_unit = DEFAULT_EXTENT_KM / extent if extent > 0 else 1.0
    km = (planar - centre) * scale_km_per_unit  # (N, 2)
    lat = origin_lat + km[:, 1] / _KM_PER_DEG_LAT
    lon = origin_lon + km[:, 0] / (_KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(origin_lat)))
    return lon, lat


def _looks_wgs84(xy: np.ndarray) -> bool:
    return bool(np.all(np.abs(xy[:, 0]) <= 180) and np.all(np.abs(xy[:, 1]) <= 90))


def _read_nodes(path: Path, num_nodes: int) -> np.ndarray:
    """(N, 2) x, y of nodes 1..N from a ``_node.tntp`` file (``node x y ;`` rows)."""
    points: dict[int, tuple[float, float]] = {}
    for number, text in numbered_lines(path):
        parts = text.rstrip(";").split()
        if parts and parts[0].lower() == "node":  # the header
            continue
        node, x, y = numbers(parts, 3, path, number, ("node", "x", "y"))
        _place(points, node, (x, y), num_nodes, path, f"line {number}")
    return _complete(points, num_nodes, path)


_GEOJSON = "a FeatureCollection of Points"


def _node_layer(root: Path, files: list[Path]) -> tuple[Path, list[Any]]:
    """The node layer among a folder's GeoJSON files, and its features.

    One file is the node layer. Of several (the repository ships a link layer of
    LineStrings beside the nodes for some networks), the node layer is the one whose
    features are all Points; the others are not read further.
    """
    layers = [(path, _features(path)) for path in files]
    if len(layers) == 1:
        return layers[0]
    points = [(path, features) for path, features in layers if _all_points(features)]
    if len(points) != 1:
        names = ", ".join(path.name for path, _ in (points or layers))
        raise SimcityError(
            f"{len(points)} of its {len(layers)} GeoJSON files are layers of Points ({names})",
            file=root,
            expected="one node layer of Points (other layers, such as links, are skipped)",
        )
    return points[0]


def _features(path: Path) -> list[Any]:
    """The ``features`` list of a GeoJSON FeatureCollection file."""
    text = read_text(path, expected=_GEOJSON)
    try:
        features = json.loads(text)["features"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise SimcityError(
            f"not a GeoJSON FeatureCollection ({type(error).__name__})",
            file=path,
            expected=_GEOJSON,
        ) from None
    if not isinstance(features, list):
        raise SimcityError("is not a list", file=path, field="features", expected=_GEOJSON)
    return features


def _all_points(features: list[Any]) -> bool:
    """Whether a layer has features and every one has a Point geometry."""

    def kind(feature: object) -> object:
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        return geometry.get("type") if isinstance(geometry, dict) else None

    return bool(features) and all(kind(feature) == "Point" for feature in features)


def _read_geojson(path: Path, features: list[Any], num_nodes: int) -> np.ndarray:
    """(N, 2) lon, lat of nodes 1..N from Point features with an ``id`` property."""
    points: dict[int, tuple[float, float]] = {}
    for index, feature in enumerate(features):
        field = f"features[{index}]"
        try:
            node = _finite(feature["properties"]["id"])
            geometry = feature["geometry"]
            if geometry["type"] != "Point":
                raise TypeError(geometry["type"])
            point = (_finite(geometry["coordinates"][0]), _finite(geometry["coordinates"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise SimcityError(
                "is not a Point with an id property and finite coordinates",
                file=path,
                field=field,
                expected="a node Point",
            ) from None
        _place(points, node, point, num_nodes, path, field)
    return _complete(points, num_nodes, path)


def _finite(value: object) -> float:
    """A JSON number (or numeric text) as a finite float; else ValueError or TypeError."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(type(value).__name__)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _place(
    points: dict[int, tuple[float, float]],
    node: float,
    point: tuple[float, float],
    num_nodes: int,
    path: Path,
    field: str,
) -> None:
    if not all(abs(v) <= MAX_COORDINATE for v in point):
        raise SimcityError(
            f"coordinates {point[0]:g}, {point[1]:g}",
            file=path,
            field=field,
            expected=f"coordinates within +-{MAX_COORDINATE:g}",
        )
    points[node_id(node, num_nodes, path, field)] = point


def _complete(points: dict[int, tuple[float, float]], num_nodes: int, path: Path) -> np.ndarray:
    """(N, 2) coordinates of nodes 1..N; checked before allocating, so a header promising
    more nodes than the file has rows fails here rather than allocating for it."""
    if len(points) < num_nodes:
        first = next(k for k in range(1, num_nodes + 1) if k not in points)
        missing = num_nodes - len(points)
        raise SimcityError(
            f"no coordinates for node {first}"
            + (f" and {missing - 1:,} more" if missing > 1 else "")
            + f" of the {num_nodes:,} in <NUMBER OF NODES>",
            file=path,
            expected="a row for every node",
        )
    xy = np.empty((num_nodes, 2))
    for node, point in points.items():
        xy[node - 1] = point
    return xy
