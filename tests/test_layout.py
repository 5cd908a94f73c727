"""The repository tests its own layout, read from the code's imports with ``ast`` (nothing is imported).

Floors, bottom to top: schemas/ -> engine/ -> tasks/ (stages, sources, publishing, shard tools) -> flows/ ->
remind_curate/ (the command line). taxonomy/ sits beside schemas/ (data the stages read). training/ reads shards
through schemas/ and may use the engine's runtime; it never imports tasks/, flows/ or the command line.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "taxonomy", "engine", "tasks", "flows", "remind_curate", "training")
# What each package may import of ours (itself always).
ALLOWED = {
    "schemas": set(),
    "taxonomy": set(),
    "engine": {"schemas"},
    "tasks": {"schemas", "taxonomy", "engine"},
    "flows": {"schemas", "taxonomy", "engine", "tasks", "training"},
    "remind_curate": {"schemas", "taxonomy", "engine", "tasks", "flows", "training"},
    "training": {"schemas", "engine.runtime"},
}
PREFECT_ALLOWED = {"flows", "remind_curate"}
MAX_LINES = 400


def _modules(package: str, root: Path = REPO) -> list[Path]:
    return sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the statements under ``if TYPE_CHECKING:`` (imported for annotations only, never at run time)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            inside.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return inside


def imports_of(path: Path, root: Path = REPO, runtime_only: bool = False) -> set[str]:
    """Every absolute module name ``path`` imports, at any depth of the file (lazy imports count too);
    ``runtime_only``: without those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(), str(path))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    skip = _type_checking_blocks(tree) if runtime_only else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _ours(name: str) -> str | None:
    top = name.split(".", 1)[0]
    return top if top in PACKAGES else None


def _permitted(package: str, imported: str) -> bool:
    target = _ours(imported)
    if target is None or target == package:
        return True
    return any(imported == rule or imported.startswith(rule + ".") for rule in ALLOWED[package])


def layering_violations(root: Path = REPO) -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in _modules(package, root):
            for name in sorted(imports_of(path, root)):
                where = path.relative_to(root)
                if not _permitted(package, name) and not name.endswith("__future__"):
                    problems.append(f"{where}: {package}/ imports {name} (a floor above or beside it)")
                if name.split(".")[0] == "prefect" and package not in PREFECT_ALLOWED:
                    problems.append(f"{where}: imports {name}; only flows/ and the command line import Prefect")
    for path in _modules("benchmarks", root):  # scripts that run flows go through flows/, like the command line
        if any(name.split(".")[0] == "prefect" for name in imports_of(path, root)):
            problems.append(f"{path.relative_to(root)}: imports Prefect; only flows/ and the command line import it")
    return sorted(set(problems))


def _resolve(name: str, root: Path) -> str | None:
    """The module of ours an imported name lives in (``tasks.vlm.backends.VLMRequest`` -> ``tasks.vlm.backends``)."""
    module = name
    while module:
        path = root / module.replace(".", "/")
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return module
        module = module.rsplit(".", 1)[0] if "." in module else ""
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted: every import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def module_cycles(root: Path = REPO) -> list[list[str]]:
    """Import cycles between our modules, lazy imports included (a factory that imports the implementations that
    import it is one); imports for annotations only (``if TYPE_CHECKING:``) are not."""
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in _modules(package, root):
            source = _module_name(path, root)
            for name in imports_of(path, root, runtime_only=True):
                target = _resolve(name, root) if _ours(name) else None
                if target and target != source:
                    graph[source].add(target)
    return _cycles(graph)


def package_cycles(root: Path = REPO) -> list[list[str]]:
    """Cycles among the parts of our floors: subpackages (``tasks.sources``, ``tasks.publish``) and the modules
    directly in a floor (``tasks.samples``, ``engine.run``)."""
    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in _modules(package, root):
            source = unit(_module_name(path, root))
            for name in imports_of(path, root):
                if _ours(name):
                    module = name
                    while module and not (root / (module.replace(".", "/") + ".py")).is_file() and \
                            not (root / module.replace(".", "/")).is_dir():
                        module = module.rsplit(".", 1)[0] if "." in module else ""
                    if module and unit(module) != source:
                        graph[source].add(unit(module))
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_floor_imports_a_higher_one_and_prefect_stays_in_the_flows():
    assert layering_violations() == []


def test_packages_do_not_import_each_other_in_a_cycle():
    assert package_cycles() == []


def test_modules_do_not_import_each_other_in_a_cycle():
    assert module_cycles() == []


def test_no_module_over_400_lines():
    long = [f"{p.relative_to(REPO)}: {n} lines" for package in PACKAGES + ("benchmarks", "tests")
            for p in _modules(package) if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert long == []


@pytest.mark.parametrize("package, source, expected", [
    ("engine", "from tasks.publish.pack import pack_shards\n", "engine/ imports tasks.publish.pack"),
    ("tasks", "def f():\n    from prefect import task\n", "only flows/ and the command line import Prefect"),
    ("training", "import flows.train\n", "training/ imports flows.train"),
    ("schemas", "from engine.run import RunContext\n", "schemas/ imports engine.run"),
])
def test_the_layout_checks_catch_a_violation(tmp_path, package, source, expected):
    """The checks above can fail: a module that breaks a rule, in a tree of empty floors, is reported."""
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / package / "bad.py").write_text(source)
    problems = layering_violations(tmp_path)
    assert any(expected in p for p in problems), problems


def test_the_cycle_check_catches_a_cycle(tmp_path):
    for name in PACKAGES:
        (tmp_path / name).mkdir()
    for sub, other in (("a", "b"), ("b", "a")):
        (tmp_path / "tasks" / sub).mkdir()
        (tmp_path / "tasks" / sub / "__init__.py").write_text(f"from tasks.{other} import x\n")
    assert package_cycles(tmp_path) == [["tasks.a", "tasks.b", "tasks.a"]]


def test_the_module_cycle_check_catches_a_lazy_import_cycle(tmp_path):
    for name in PACKAGES:
        (tmp_path / name).mkdir()
    (tmp_path / "tasks" / "base.py").write_text("def make():\n    from tasks.impl import Impl\n    return Impl()\n")
    (tmp_path / "tasks" / "impl.py").write_text("from tasks.base import make\n")
    (tmp_path / "tasks" / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                 "    from tasks.user import User\n")
    (tmp_path / "tasks" / "user.py").write_text("from tasks.typed import x\n")
    assert module_cycles(tmp_path) == [["tasks.base", "tasks.impl"]]


def test_a_benchmark_importing_prefect_is_caught(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench.py").write_text("def warm():\n    from prefect import flow\n")
    assert layering_violations(tmp_path) == [
        "benchmarks/bench.py: imports Prefect; only flows/ and the command line import it"]
