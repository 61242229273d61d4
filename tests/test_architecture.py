"""The package's shape, read from its source with ``ast`` (nothing is imported).

Three rules of the core redesign (issue 13), checked on every run so they cannot
erode one convenient import at a time:

* **No import cycles** among the package's modules. Imports inside functions
  count too: deferring an import to call time hides a cycle from Python, not
  from a reader, who still cannot understand one module without the other.
  Relative and absolute imports are both resolved; importing a package counts
  as importing its ``__init__``, and ``from package import name`` counts as
  importing ``package.name`` when that is a module, else ``package``. Imports
  under ``if TYPE_CHECKING:`` are left out: they never run, and annotations
  may name each other's types. Imports by dotted string (``import_string``,
  settings) are not seen.
* **No module over 500 lines** (migrations aside): past that a module does
  more than one job.
* **No private name of another project** (``from django_ratelimit.core import
  _split_rate``, ``import x._y``, or ``module._name`` on an imported module):
  a patch release of that project may change it without notice.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "django_ciam_otp"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 500


@dataclass(frozen=True)
class Module:
    name: str  # dotted; a package's __init__ goes by the package's name
    path: Path
    is_package: bool

    @property
    def package(self) -> str:
        """What a relative import of level 1 starts from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        found[name] = Module(name, path, is_package)
    return found


def tree(module: Module) -> ast.Module:
    return ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, function bodies included, ``if TYPE_CHECKING:`` bodies not."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from runtime_nodes(other)
            continue
        yield child
        yield from runtime_nodes(child)


def absolute(module: Module, node: ast.ImportFrom) -> str:
    """The dotted module a ``from ... import`` reads from, relative levels resolved."""
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@dataclass(frozen=True)
class Edge:
    target: str
    line: int


def package_imports(module: Module) -> list[Edge]:
    """The package's modules ``module`` imports at run time, each with its line."""
    known = modules()
    edges = []
    for node in runtime_nodes(tree(module)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, node)
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        else:
            continue
        # Importing a.b.c runs a/__init__ and a/b/__init__ first, except the
        # importer's own packages, which are loaded before it.
        own = set(ancestors(module.name))
        targets += [parent for target in targets for parent in ancestors(target)]
        edges += [
            Edge(target, node.lineno)
            for target in targets
            if target in known and target != module.name and target not in own
        ]
    return edges


def ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``["a.b", "a"]``: the packages Python imports before ``a.b.c``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` over the whole package."""
    graph: dict[str, dict[str, int]] = {}
    for name, module in modules().items():
        graph[name] = {}
        for edge in package_imports(module):
            graph[name].setdefault(edge.target, edge.line)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that all reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(groups)


def one_cycle(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first, inside the group)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node]):
            if target == start:
                return [*paths[node], start]
            if target in members and target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    """``a → b (a.py:12) → a (b.py:7)``: each step with the line of its import."""
    short = [name.removeprefix(PACKAGE + ".") for name in cycle]
    steps = [short[0]]
    for here, there, name in zip(cycle, cycle[1:], short[1:], strict=False):
        path = modules()[here].path.relative_to(ROOT.parent)
        steps.append(f"{name} ({path}:{graph[here][there]})")
    return " → ".join(steps)


def test_no_import_cycles_among_the_package_modules() -> None:
    graph = import_graph()
    cycles = [describe(graph, one_cycle(graph, group)) for group in strongly_connected(graph)]
    listing = "\n".join(f"  {cycle}" for cycle in cycles)
    assert not cycles, f"import cycles (one per group of modules that reach each other):\n{listing}"


def test_the_cycle_finder_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: a cycle closed by a deferred relative import is found and printed."""
    graph = {"p.a": {"p.b": 3}, "p.b": {"p.c": 5}, "p.c": {"p.a": 9}, "p.d": {"p.a": 1}}
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"]]
    assert one_cycle(graph, ["p.a", "p.b", "p.c"]) == ["p.a", "p.b", "p.c", "p.a"]
    source = "def f():\n    from .. import views\n"
    node = ast.parse(source).body[0].body[0]  # type: ignore[attr-defined]
    inner = Module(f"{PACKAGE}.admin.quotas", ROOT / "admin" / "quotas.py", False)
    assert absolute(inner, node) == PACKAGE
    guarded = ast.parse("if TYPE_CHECKING:\n    import a\nelse:\n    import b\n")
    imported = [n.names[0].name for n in runtime_nodes(guarded) if isinstance(n, ast.Import)]
    assert imported == ["b"]


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(module.path.relative_to(ROOT.parent)): count
        for module in modules().values()
        if ".migrations" not in module.name
        and (count := len(module.path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@cache
def is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package, found on disk without importing it.

    ``importlib.util.find_spec("a.b.c")`` would import ``a.b`` (and whatever
    that imports); only the top-level name is looked up, which imports nothing.
    """
    top, *rest = dotted.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not rest:
        return spec is not None
    for location in spec.submodule_search_locations or ():
        path = Path(location).joinpath(*rest)
        if path.is_dir() or path.with_name(path.name + ".py").is_file():
            return True
        if any(path.parent.glob(path.name + ".*.so")):  # a compiled extension module
            return True
    return False


def third_party(dotted: str) -> bool:
    top = dotted.partition(".")[0]
    return bool(top) and top != PACKAGE and top not in sys.stdlib_module_names


def private_imports(module: Module) -> list[str]:
    """``file:line name`` for each private name of another project that ``module`` reaches."""
    found: list[str] = []
    aliases: set[str] = set()  # local names bound to a third-party module
    where = module.path.relative_to(ROOT.parent)
    nodes = list(ast.walk(tree(module)))  # TYPE_CHECKING imports count here: they still couple
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not third_party(alias.name):
                    continue
                if any(is_private(part) for part in alias.name.split(".")):
                    found.append(f"{where}:{node.lineno} import {alias.name}")
                aliases.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, ast.ImportFrom) and not node.level and third_party(node.module or ""):
            source = node.module or ""
            for alias in node.names:
                dotted = f"{source}.{alias.name}"
                if any(is_private(part) for part in dotted.split(".")):
                    found.append(f"{where}:{node.lineno} from {source} import {alias.name}")
                elif is_module(dotted):
                    aliases.add(alias.asname or alias.name)
    for node in nodes:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and is_private(node.attr)
        ):
            found.append(f"{where}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_no_private_name_of_another_project_is_used() -> None:
    found = [hit for module in modules().values() for hit in private_imports(module)]
    assert not found, "private names of third-party packages:\n" + "\n".join(
        f"  {hit}" for hit in found
    )
