"""City graph: attribute keys, and `City`, a frozen road graph with array views.

Nodes are zones/intersections; edges are directed road links. The graph is the truth:
the arrays below are read from it once, and the graph is frozen so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from simcity.city.network import Network
from simcity.errors import SimcityError

if TYPE_CHECKING:
    import networkx as nx

# Node attributes.
NODE_LON = "lon"
NODE_LAT = "lat"
NODE_NAME = "name"
NODE_POPULATION = "population"
NODE_JOBS = "jobs"
NODE_LAND_USE = "land_use"
NODE_IS_ZONE = "is_zone"
"""Zones originate and attract trips."""
NODE_THROUGH = "through"
"""False for zones that trips may not pass through (TNTP `<FIRST THRU NODE>`)."""

# Link attributes.
LINK_CAPACITY = "capacity_veh_h"
LINK_FREE_FLOW_TIME = "free_flow_time_min"
LINK_LENGTH = "length_km"
LINK_BPR_B = "bpr_b"
LINK_BPR_POWER = "bpr_power"
LINK_GEOMETRY = "geometry"
"""Optional: the road's (lon, lat) points from tail to head, for maps of real streets."""

LAND_USES: tuple[str, ...] = ("residential", "commercial", "industrial", "mixed")


@dataclass(frozen=True, eq=False)
class City:
    """A geo-referenced road graph, its zones and (optionally) a base OD matrix.

    Args:
        name: short name for tables and files.
        graph: the road graph; frozen on construction.
        od_veh_h: base-hour demand between zones (Z x Z, in the order of `zone_index`),
            or None to derive it from population and jobs (gravity model).
        source: where the graph came from, for error messages.
    """

    name: str
    graph: nx.DiGraph
    od_veh_h: np.ndarray | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        import networkx as nx

        check_graph(self.graph, self.source)
        nx.freeze(self.graph)
        if self.od_veh_h is not None:
            z = self.num_zones
            if self.od_veh_h.shape != (z, z):
                raise SimcityError(
                    f"OD matrix has shape {self.od_veh_h.shape}",
                    file=self.source,
                    field="trips",
                    expected=f"({z}, {z}) for {z} zones",
                )
            self.od_veh_h.setflags(write=False)

    @cached_property
    def node_ids(self) -> list:
        return list(self.graph.nodes)

    @cached_property
    def node_index(self) -> dict:
        return {n: i for i, n in enumerate(self.node_ids)}

    @cached_property
    def num_nodes(self) -> int:
        return self.graph.number_of_nodes()

    @cached_property
    def num_links(self) -> int:
        return self.graph.number_of_edges()

    def _node_array(self, key: str, dtype: type = float) -> np.ndarray:
        values: np.ndarray = np.array([d[key] for _, d in self.graph.nodes(data=True)], dtype=dtype)
        values.setflags(write=False)
        return values

    def _link_array(self, key: str) -> np.ndarray:
        values = np.array([d[key] for _, _, d in self.graph.edges(data=True)], dtype=float)
        values.setflags(write=False)
        return values

    @cached_property
    def lon(self) -> np.ndarray:
        return self._node_array(NODE_LON)

    @cached_property
    def lat(self) -> np.ndarray:
        return self._node_array(NODE_LAT)

    @cached_property
    def population(self) -> np.ndarray:
        return self._node_array(NODE_POPULATION)

    @cached_property
    def jobs(self) -> np.ndarray:
        return self._node_array(NODE_JOBS)

    @cached_property
    def land_use(self) -> np.ndarray:
        """Land-use code per node: an index into `LAND_USES`."""
        codes = {name: i for i, name in enumerate(LAND_USES)}
        values = np.array([codes[d[NODE_LAND_USE]] for _, d in self.graph.nodes(data=True)])
        values.setflags(write=False)
        return values

    def nearest_node(self, lon: float, lat: float, *, zones_only: bool = False) -> int:
        """Index of the node (or, with ``zones_only``, the zone position) nearest a point."""
        index = self.zone_index if zones_only else slice(None)
        d2 = (self.lon[index] - lon) ** 2 + (self.lat[index] - lat) ** 2
        return int(np.argmin(d2))

    @cached_property
    def zone_index(self) -> np.ndarray:
        """Node indices of the zones, in OD-matrix order."""
        flags = self._node_array(NODE_IS_ZONE, dtype=bool)
        return np.flatnonzero(flags)

    @property
    def num_zones(self) -> int:
        return len(self.zone_index)

    @cached_property
    def link_tail(self) -> np.ndarray:
        index = self.node_index
        return np.array([index[u] for u, _ in self.graph.edges], dtype=np.int64)

    @cached_property
    def link_head(self) -> np.ndarray:
        index = self.node_index
        return np.array([index[v] for _, v in self.graph.edges], dtype=np.int64)

    @cached_property
    def capacity_veh_h(self) -> np.ndarray:
        return self._link_array(LINK_CAPACITY)

    @cached_property
    def free_flow_time_min(self) -> np.ndarray:
        return self._link_array(LINK_FREE_FLOW_TIME)

    @cached_property
    def length_km(self) -> np.ndarray:
        return self._link_array(LINK_LENGTH)

    @cached_property
    def link_geometry(self) -> list[tuple[tuple[float, float], ...]] | None:
        """Each link's (lon, lat) points from tail to head, or None if no link has any."""
        edges = self.graph.edges(data=True)
        if not any(LINK_GEOMETRY in d for _, _, d in edges):
            return None
        lon, lat, index = self.lon, self.lat, self.node_index
        return [
            tuple(
                d.get(LINK_GEOMETRY)
                or ((lon[index[u]], lat[index[u]]), (lon[index[v]], lat[index[v]]))
            )
            for u, v, d in edges
        ]

    @cached_property
    def network(self) -> Network:
        """The arrays traffic assignment works on."""
        through = self._node_array(NODE_THROUGH, dtype=bool)
        return Network(
            num_nodes=self.num_nodes,
            tail=self.link_tail,
            head=self.link_head,
            capacity_veh_h=self.capacity_veh_h,
            free_flow_time_min=self.free_flow_time_min,
            bpr_b=self._link_array(LINK_BPR_B),
            bpr_power=self._link_array(LINK_BPR_POWER),
            zone_nodes=self.zone_index,
            through=through,
        )


_NODE_KEYS = (NODE_LON, NODE_LAT, NODE_POPULATION, NODE_JOBS, NODE_LAND_USE, NODE_IS_ZONE)
_LINK_KEYS = (LINK_CAPACITY, LINK_FREE_FLOW_TIME, LINK_LENGTH, LINK_BPR_B, LINK_BPR_POWER)


def check_graph(graph: nx.DiGraph, source: str = "<memory>") -> None:
    """Raise `SimcityError` unless ``graph`` is a usable city graph.

    Fills the optional attributes (`NODE_NAME`, `NODE_THROUGH`) where they are missing.
    """
    import networkx as nx

    if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
        raise SimcityError(
            "graph is not a simple directed graph", file=source, expected="nx.DiGraph"
        )
    if graph.number_of_nodes() == 0:
        raise SimcityError(
            "the city graph is empty", file=source, field="nodes", expected=">= 1 node"
        )
    if graph.number_of_edges() == 0:
        raise SimcityError(
            "the city graph has no links", file=source, field="links", expected=">= 1 link"
        )
    for node, data in graph.nodes(data=True):
        for key in _NODE_KEYS:
            if key not in data:
                raise SimcityError(
                    f"node {node!r} has no {key!r}", file=source, field=f"nodes.{key}"
                )
        for key in (NODE_POPULATION, NODE_JOBS):
            if not (np.isfinite(data[key]) and data[key] >= 0):
                raise SimcityError(
                    f"node {node!r} has {key}={data[key]!r}",
                    file=source,
                    field=f"nodes.{key}",
                    expected="a finite number >= 0",
                )
        if not (-180 <= data[NODE_LON] <= 180 and -90 <= data[NODE_LAT] <= 90):
            raise SimcityError(
                f"node {node!r} is at lon={data[NODE_LON]}, lat={data[NODE_LAT]}",
                file=source,
                field="nodes.lon/lat",
                expected="WGS84 degrees",
            )
        if data[NODE_LAND_USE] not in LAND_USES:
            raise SimcityError(
                f"node {node!r} has land use {data[NODE_LAND_USE]!r}",
                file=source,
                field=f"nodes.{NODE_LAND_USE}",
                expected=" | ".join(LAND_USES),
            )
        data.setdefault(NODE_NAME, str(node))
        data.setdefault(NODE_THROUGH, True)
    for u, v, data in graph.edges(data=True):
        for key in _LINK_KEYS:
            if key not in data:
                raise SimcityError(
                    f"link {u}->{v} has no {key!r}", file=source, field=f"links.{key}"
                )
            if not np.isfinite(data[key]) or data[key] < 0:
                raise SimcityError(
                    f"link {u}->{v} has {key}={data[key]!r}",
                    file=source,
                    field=f"links.{key}",
                    expected="a finite number >= 0",
                )
        if data[LINK_CAPACITY] <= 0:
            raise SimcityError(
                f"link {u}->{v} has capacity {data[LINK_CAPACITY]!r}",
                file=source,
                field=f"links.{LINK_CAPACITY}",
                expected="> 0 veh/h",
            )
    if not any(d[NODE_IS_ZONE] for _, d in graph.nodes(data=True)):
        raise SimcityError(
            "no node is a zone", file=source, field=f"nodes.{NODE_IS_ZONE}", expected=">= 1 zone"
        )
