"""The layout rules hold: no import cycle between modules (imports inside functions and under
TYPE_CHECKING count), no module outside tests imports another top-level package's private
module, and cleanroom's top level stays small. The layers themselves are import-linter
contracts in pyproject.toml (`make lint`)."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

PACKAGES = ("normalize", "protocols", "cleanroom", "examples", "bench")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(
                        graph.find_modules_directly_imported_by(child)))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def _private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__")
               for part in module.split(".")[1:])


def test_no_package_imports_another_packages_private_module(graph):
    bad = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            top_a, top_b = importer.split(".")[0], imported.split(".")[0]
            if top_b in PACKAGES and top_a != top_b and _private(imported):
                bad.append(f"{importer} -> {imported}")
    assert bad == []


def test_cleanroom_top_level_has_at_most_eight_modules():
    top = list((ROOT / "cleanroom").glob("*.py"))
    assert len(top) <= 8, sorted(p.name for p in top)


def test_the_library_does_not_import_faker(graph):
    library = [m for m in graph.modules if m.split(".")[0] in ("normalize", "protocols")
               or (m.startswith("cleanroom") and not m.startswith("cleanroom.cli"))]
    for m in library:
        assert not graph.chain_exists(m, "examples.generate"), m
