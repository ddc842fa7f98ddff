"""The shipped import graph has no circle, not even between two modules of one package; and
a shared module with a single user stage is one README says why it stays shared.

import-linter's layer contracts (`make lint`) keep every import pointing down the
layers; inside a layer, or inside one package, only a cycle check sees two modules
that import each other. grimp counts an import inside a function (a lazy import) as
an import: a circle that is only closed at run time is still a circle to a reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import grimp

SHIPPED = ("common", "entry", "planner", "executor", "finalizer", "ops")
STAGES = ("planner", "executor", "finalizer", "ops")
README = Path(__file__).resolve().parents[2] / "README.md"


def strongly_connected(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The strongly connected components of `graph` (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = graph.get(node, ())
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
            if work:  # back in the caller: carry the low link up
                caller = work[-1][0]
                low[caller] = min(low[caller], low[node])
    return found


def shipped_imports() -> dict[str, list[str]]:
    graph = grimp.build_graph(*SHIPPED)
    return {
        module: sorted(graph.find_modules_directly_imported_by(module))
        for module in sorted(graph.modules)
    }


def describe(circle: list[str], imports: Mapping[str, Sequence[str]]) -> str:
    members = set(circle)
    arrows = [f"{a} -> {b}" for a in circle for b in imports.get(a, ()) if b in members]
    return f"{', '.join(circle)}: " + "; ".join(arrows)


def test_no_two_shipped_modules_import_each_other() -> None:
    imports = shipped_imports()
    assert "planner.service" in imports and "ops.canary" in imports, "the graph is built"
    circles = [c for c in strongly_connected(imports) if len(c) > 1]
    assert not circles, "import circles:\n" + "\n".join(describe(c, imports) for c in circles)


def test_a_circle_is_found_and_named() -> None:
    # Given a -> b -> c -> a and d -> a: one circle of three; d stands outside it.
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []}
    circles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert circles == [["a", "b", "c"]]
    assert describe(circles[0], graph) == "a, b, c: a -> b; b -> c; c -> a"


def test_two_circles_sharing_nothing_are_reported_apart() -> None:
    graph = {"a": ["b"], "b": ["a", "c"], "c": ["d"], "d": ["c"]}
    circles = sorted(c for c in strongly_connected(graph) if len(c) > 1)
    assert circles == [["a", "b"], ["c", "d"]]


def single_stage_modules(graph: grimp.ImportGraph) -> dict[str, str]:
    """Each module of `common` that one stage imports and nothing else of `common` does
    (its own package's `__init__` aside), with that stage."""
    found: dict[str, str] = {}
    for module in sorted(m for m in graph.modules if m.startswith("common.")):
        importers = graph.find_modules_that_directly_import(module)
        stages = {i.split(".")[0] for i in importers} & set(STAGES)
        shared = {i for i in importers if i.startswith("common.") and i != module.rsplit(".", 1)[0]}
        if len(stages) == 1 and not shared:
            found[module] = stages.pop()
    return found


def readme_says_why_shared() -> str:
    text = README.read_text()
    match = re.search(r"^Shared modules with one user stage.*?(?=\n\n)", text, re.S | re.M)
    assert match, "README has the paragraph on shared modules with one user"
    return match[0]


def test_a_shared_module_with_one_user_stage_is_one_readme_explains() -> None:
    single = single_stage_modules(grimp.build_graph(*SHIPPED))
    assert "common.adapters.store.verify" in single, "ops alone checks the ledger"
    why = readme_says_why_shared()
    unexplained = {
        module: stage
        for module, stage in single.items()
        if f"`{module.rsplit('.', 1)[1]}`" not in why
        and f"`{module.replace('.', '/')}.py`" not in why
    }
    assert not unexplained, f"move into the stage, or say why in README: {unexplained}"
