"""The import graph of `simcity` and `agents`: no cycles, imports point one way, down.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
cycle that only a lazy import keeps from failing is still two modules that need each
other. Layers (lower imports nothing higher; one layer's packages form no cycle):

    simcity: errors, arrays < config < city < traffic, energy, monitoring, compute < world
             < env, render, records < the package itself, marl (PettingZoo view of env)
    agents:  policies < training < green, viz, sweeps < cli
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("simcity", "agents")
LAYERS = {
    "simcity.errors": 0,
    "simcity.arrays": 0,
    "simcity.safe_io": 0,
    "simcity.config": 1,
    "simcity.city": 2,
    "simcity.traffic": 3,
    "simcity.energy": 3,
    "simcity.monitoring": 3,
    "simcity.compute": 3,
    "simcity.world": 4,
    "simcity.env": 5,
    "simcity.render": 5,
    "simcity.records": 5,
    "simcity.marl": 6,
    "simcity": 6,
    "agents.data": 7,  # the shipped checkpoint's path: package data, below every user
    "agents.policies": 10,
    "agents.training": 11,
    "agents.green": 12,
    "agents.viz": 12,
    "agents.sweeps": 12,
    "agents.references": 12,  # SB3 references beside our own policies
    "agents.cli": 13,
    "agents": 14,
}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Modules (of ours, or top-level third-party names) that ``path`` imports."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return found


def _layer(module: str) -> tuple[str, int]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    modules = _modules()
    g = nx.DiGraph()
    for name, path in modules.items():
        g.add_node(name)
        for target in _imports(path, name, modules):
            g.add_edge(name, target)
    return g


def _ours(g: nx.DiGraph) -> nx.DiGraph:
    return g.subgraph([n for n in g if n.split(".")[0] in PACKAGES]).copy()


def test_no_module_imports_another_that_imports_it_back(graph: nx.DiGraph) -> None:
    ours = _ours(graph)
    cycles = [c for c in nx.simple_cycles(ours) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_simcity_never_imports_agents_or_torch(graph: nx.DiGraph) -> None:
    bad = [
        (module, target)
        for module, target in graph.edges
        if module.startswith("simcity") and target.split(".")[0] in ("agents", "torch")
    ]
    assert not bad


def test_imports_point_down_the_layers(graph: nx.DiGraph) -> None:
    ours = _ours(graph)
    up = []
    for module, target in ours.edges:
        rank, target_rank = _layer(module)[1], _layer(target)[1]
        if target_rank > rank:
            up.append(f"{module} -> {target}")
    assert not up, "imports that point up: " + "; ".join(up)
    # Packages of one layer may lean on each other, but never both ways.
    packages = nx.DiGraph()
    for module, target in ours.edges:
        a, b = _layer(module)[0], _layer(target)[0]
        if a != b:
            packages.add_edge(a, b)
    assert not list(nx.simple_cycles(packages))


def test_the_graph_sees_known_edges(graph: nx.DiGraph) -> None:
    # The checks above are vacuous if the parser misses imports: pin a few true edges.
    assert graph.has_edge("simcity.env", "simcity.world")
    assert graph.has_edge("agents.training.train", "agents.policies.attention")
    assert graph.has_edge("agents.cli.main", "agents.cli.common")
