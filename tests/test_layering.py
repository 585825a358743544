"""The import graph of the service's packages, read from their source (every ``import``, those
inside functions included): no cycle, and the layering docs/architecture.md describes."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("audit", "commissions", "livecommerce", "orders", "partners")
DOMAIN = ("audit", "commissions", "orders", "partners")
# The one cycle kept on purpose: ``partners/models.py`` imports the webhook models at its end,
# which is what registers them under the app label ``partners``; they import Partner and Event.
ALLOWED_CYCLE = frozenset({"partners.models", "partners.webhooks.models"})


def _modules(packages) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``module`` imports (the closest known module of each)."""

    def closest(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            # ``from package import submodule`` imports the submodule, not only the package
            names.update(
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            )
    return {target for name in names if (target := closest(name)) and target != module}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = _modules(PACKAGES)
    return {module: _imported(module, path, known) for module, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_the_checker_finds_a_cycle_closed_inside_a_function():
    # the check itself: a -> b at module level, b -> a inside a function
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [{"a", "b"}]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle(graph):
    assert [cycle for cycle in _cycles(graph) if cycle != ALLOWED_CYCLE] == []


def test_publishing_an_event_imports_queueing_not_the_task(graph):
    assert "partners.webhooks.queueing" in graph["partners.events"]
    assert "partners.webhooks.tasks" not in graph["partners.webhooks.queueing"]


def test_the_plumbing_knows_no_domain(graph):
    assert {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("livecommerce")
        for target in targets
        if target.split(".")[0] in DOMAIN
    } == set()


def test_partners_import_neither_orders_nor_commissions(graph):
    assert {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("partners")
        for target in targets
        if target.split(".")[0] in ("orders", "commissions")
    } == set()


def test_services_and_selectors_never_import_the_api_layer(graph):
    def layer(module: str, name: str) -> bool:
        return any(part in (name, f"{name}s") for part in module.split(".")[1:])

    assert {
        (module, target)
        for module, targets in graph.items()
        if module.split(".")[0] in DOMAIN
        if layer(module, "service") or layer(module, "selector")
        for target in targets
        if target.split(".")[0] in DOMAIN and layer(target, "api")
    } == set()


def test_the_clients_speak_http_only():
    imported = {
        target.split(".")[0]
        for module, path in _modules(("clients",)).items()
        for target in _imported(module, path, _modules(PACKAGES))
    }
    assert imported == set()
