"""The package's shape: no import circles, no imports hidden in functions,
no component loaded from a string, small modules, components that do not
import the admin."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flask_rpcenable"
NAME = "flask_rpcenable"
#: "About 400 lines at most": a few lines over are tolerated, not a module twice the size.
MAX_LINES = 410
#: Optional dependencies (extras): a module importing one at its top is
#: itself imported only when its feature is chosen.
OPTIONAL_LIBRARIES = {"rq", "redis", "pymemcache"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterator[tuple[ast.AST, bool]]:
    """Every import of a module, with whether it runs at import time (top level)."""

    def walk(node: ast.AST, top: bool) -> Iterator[tuple[ast.AST, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # only for type checkers: never runs
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, top
            inner = top and not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            yield from walk(child, inner)

    yield from walk(tree, True)


def _targets(module: str, path: Path, node: ast.AST) -> list[str]:
    """The modules of this package that an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        if node.level:
            base = module.split(".")
            if path.name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = []
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            names.append(sub if sub in MODULES else source)
    return [name for name in names if name in MODULES and name != module]


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges[module] = {
            target
            for node, top in _imports(tree)
            if top
            for target in _targets(module, path, node)
        }
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    edges = graph()
    # The top-level package imports the public API; nothing inside imports it back.
    back = sorted(m for m, targets in edges.items() if NAME in targets and m != NAME)
    assert back == [], f"modules importing the package's __init__: {back}"
    assert cycles(edges) == []


def test_the_circle_check_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _needs_optional_library(module: str) -> bool:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node, top in _imports(tree):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [getattr(node, "module", None) or ""]
        )
        if top and any(name.split(".")[0] in OPTIONAL_LIBRARIES for name in names):
            return True
    return False


def test_no_import_moved_into_a_function() -> None:
    """Our own modules are imported at the top; only a module that needs an
    optional dependency (the RQ backend) is imported where it is chosen."""
    hidden = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, top in _imports(tree):
            if top:
                continue
            ours = [t for t in _targets(module, path, node) if not _needs_optional_library(t)]
            if ours:
                hidden.append(f"{module}:{node.lineno} imports {ours}")
    assert hidden == []


#: Modules that import what the *user* names by its path: a job's function
#: (RQ), ``RPCENABLE_USER_MODEL``, ``RPCENABLE_ADMIN_ACCESS``.
IMPORTS_USER_CODE = {
    f"{NAME}.background.rq_backend",
    f"{NAME}.auth.users",
    f"{NAME}.admin.access",
}


def test_no_component_loaded_from_a_string() -> None:
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if module not in IMPORTS_USER_CODE:
            assert "import_module" not in text and "import_string" not in text, module
        assert f'"{NAME}.' not in text.replace(f'getLogger("{NAME}.', ""), module


@pytest.mark.parametrize("component", ["auth", "calllog", "background", "client"])
def test_components_do_not_import_the_admin(component: str) -> None:
    edges = graph()
    for module in MODULES:
        if module == f"{NAME}.{component}" or module.startswith(f"{NAME}.{component}."):
            admin = [t for t in edges[module] if t.startswith(f"{NAME}.admin")]
            assert admin == [], module


def test_modules_are_small() -> None:
    large = {
        module: lines
        for module, path in MODULES.items()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_LINES
    }
    assert large == {}


@pytest.mark.parametrize("core", ["calls", "dispatch", "registry", "params", "errors", "state"])
def test_the_core_knows_no_wire_format(core: str) -> None:
    """The core modules import no protocol, no view and no codec."""
    edges = graph()
    wire = [
        t for t in edges[f"{NAME}.{core}"]
        if t.startswith((f"{NAME}.protocols", f"{NAME}.views"))
    ]
    assert wire == []
    tree = ast.parse(MODULES[f"{NAME}.{core}"].read_text(encoding="utf-8"))
    stdlib_wire = [
        alias.name
        for node, _ in _imports(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("xml.", "json"))
        for alias in node.names
    ]
    assert stdlib_wire == []


def test_rq_jobs_queued_before_the_move_still_find_their_function() -> None:
    pytest.importorskip("rq")
    from flask_rpcenable.background import rq_backend
    from flask_rpcenable.background_rq import execute

    assert execute is rq_backend.execute


TESTS = Path(__file__).resolve().parents[1]


def test_tests_mirror_the_package() -> None:
    components = sorted(
        path.name
        for path in PACKAGE.iterdir()
        if (path / "__init__.py").exists() and path.name != "protocols"
    )
    folders = sorted(
        path.name for path in TESTS.iterdir() if path.is_dir() and path.name != "__pycache__"
    )
    assert set(components) <= set(folders), (components, folders)


def test_every_test_module_holds_tests_and_helpers_are_not_named_test() -> None:
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        has_tests = any(
            isinstance(node, (ast.FunctionDef, ast.ClassDef))
            and node.name.lower().startswith("test")
            for node in tree.body
        )
        assert has_tests == path.name.startswith("test_"), path.relative_to(TESTS)


def test_no_test_imports_a_conftest() -> None:
    """``conftest`` names a different module in each folder: helpers live in
    modules of their own (``live``, ``log_app``, ``*_helpers``)."""
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, _ in _imports(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [getattr(node, "module", None) or ""]
            )
            assert "conftest" not in names, path
