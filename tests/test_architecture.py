"""The import graph the style guide promises, checked by walking the package with ``ast``.

* the core (everything in ``cfsslpy/`` outside ``cli/`` and ``api/``) never imports ``cfsslpy.cli``,
  ``cfsslpy.api``, ``argparse`` or ``bottle``;
* only the ``cfsslpy/pkcs11/`` package (its ``library`` module) imports the ``pkcs11`` package, lazily;
* ``errors``, ``pem`` and ``inputs`` sit at the bottom: from cfsslpy they import nothing but ``errors``;
* no import cycles among cfsslpy modules;
* no module imports another module's private (leading underscore) name.

Imports inside functions (lazy imports) and under ``if TYPE_CHECKING:`` count too: a lazy import is still a
dependency, and a cycle hidden by one is still a knot a reader has to untie.

Module names come from paths, so a module turned into a package (``bundler.py`` -> ``bundler/``) is checked the
same way: ``from cfsslpy.bundler import x`` depends on the submodule ``cfsslpy.bundler.x`` when there is one, and
otherwise on the package's ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import cfsslpy

PACKAGE = Path(cfsslpy.__file__).parent
BOTTOM = {"errors", "pem", "inputs"}


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    line: int
    top_level: bool  # at module level (not inside a function)
    name: str | None = None  # "from module import name": the name imported (module or attribute)


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = PACKAGE.parent) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, not in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # "from cfsslpy import errors" names a submodule, "from cfsslpy.errors import Reason" an attribute:
                # record both readings, dependencies() picks the one that exists
                for alias in child.names:
                    found.append(Import(target, child.lineno, not in_function, alias.name))
                    found.append(Import(f"{target}.{alias.name}", child.lineno, not in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def python_files(package: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def write_tree(root: Path, files: dict[str, str]) -> None:
    """A throw-away package for testing the checkers: relative path -> source."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def is_core(path: Path) -> bool:
    """Everything outside the two faces; ``__main__`` is the launcher of the CLI face."""
    rel = path.relative_to(PACKAGE).parts
    return rel[0] not in ("cli", "api", "__main__.py")


def is_module(name: str, *targets: str) -> bool:
    return any(name == t or name.startswith(t + ".") for t in targets)


def existing_modules() -> set[str]:
    return {module_name(p) for p in python_files()}


CORE = [pytest.param(p, id=str(p.relative_to(PACKAGE))) for p in python_files() if is_core(p)]
ALL = [pytest.param(p, id=str(p.relative_to(PACKAGE))) for p in python_files()]


def test_the_walk_sees_the_package() -> None:
    names = existing_modules()
    assert {"cfsslpy.errors", "cfsslpy.pem", "cfsslpy.inputs", "cfsslpy.cli.main", "cfsslpy.signer"} <= names
    assert len(CORE) >= 10


@pytest.mark.parametrize("path", CORE)
def test_core_never_imports_the_faces_or_their_frameworks(path: Path) -> None:
    bad = [i for i in imports(path) if is_module(i.module, "cfsslpy.cli", "cfsslpy.api", "argparse", "bottle")]
    assert not bad, f"{path.name} imports {[(i.module, i.line) for i in bad]}"


@pytest.mark.parametrize("path", ALL)
def test_only_the_pkcs11_module_imports_pkcs11(path: Path) -> None:
    uses = [i for i in imports(path) if is_module(i.module, "pkcs11")]
    if module_name(path) == "cfsslpy.pkcs11" or module_name(path).startswith("cfsslpy.pkcs11."):  # module or package
        assert all(not i.top_level for i in uses), "pkcs11 must be imported lazily, inside a function"
    else:
        assert not uses, f"{path.name} imports the pkcs11 package at lines {[i.line for i in uses]}"


@pytest.mark.parametrize("name", sorted(BOTTOM))
def test_the_bottom_modules_import_only_errors_from_cfsslpy(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    if not path.exists():  # turned into a package
        path = PACKAGE / name / "__init__.py"
    modules = existing_modules()
    ours = {i.module for i in imports(path) if is_module(i.module, "cfsslpy")}
    # "from cfsslpy.errors import X" yields both "cfsslpy.errors" and "cfsslpy.errors.X"; keep real modules
    ours = {m for m in ours if m in modules or m == "cfsslpy"}
    assert ours <= {"cfsslpy.errors"}, f"{name}.py imports {sorted(ours - {'cfsslpy.errors'})}"


def test_the_checker_resolves_relative_and_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "cfsslpy" / "cli" / "probe.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("from . import main\nfrom ..errors import Error\n\ndef f():\n    import bottle\n")
    found = {(i.module, i.top_level) for i in imports(sample, tmp_path)}
    assert ("cfsslpy.cli.main", True) in found
    assert ("cfsslpy.errors", True) in found
    assert ("bottle", False) in found


# --- import cycles --------------------------------------------------------------------------------------------


def dependencies(path: Path, modules: set[str], root: Path = PACKAGE.parent) -> set[str]:
    """The cfsslpy modules ``path`` imports, anywhere in its body.

    ``from P import n`` depends on the module ``P.n`` when it exists, else on ``P`` itself (``n`` is then an
    attribute of ``P``). A package's ``__init__`` is not implied by importing one of its submodules: Python has
    already started it by then, so a submodule importing a sibling through its full name is not a cycle.
    """
    deps: set[str] = set()
    for i in imports(path, root):
        if i.name is None:
            if i.module in modules:
                deps.add(i.module)
        elif f"{i.module}.{i.name}" not in modules and i.module in modules:
            deps.add(i.module)
    deps.discard(module_name(path, root))
    return deps


def import_graph(root: Path = PACKAGE.parent) -> dict[str, set[str]]:
    paths = python_files(root / "cfsslpy")
    modules = {module_name(p, root) for p in paths}
    return {module_name(p, root): dependencies(p, modules, root) for p in paths}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


# Cycles outside this change's reach, to be broken by their owners. This list may only shrink: a new cycle,
# or a listed one that is gone (delete its line then), fails the test.
CYCLES_ALLOWED: list[list[str]] = []


def test_there_are_no_import_cycles() -> None:
    graph = import_graph()
    knots = cycles(graph)
    new = [knot for knot in knots if knot not in CYCLES_ALLOWED]
    gone = [knot for knot in CYCLES_ALLOWED if knot not in knots]
    detail = [{m: sorted(graph[m] & set(knot)) for m in knot} for knot in new]
    assert not new, f"import cycles (module: the members of its cycle it imports): {detail}"
    assert not gone, f"broken, well done: delete these from CYCLES_ALLOWED so they stay broken: {gone}"


def test_the_cycle_finder_sees_lazy_imports_and_packages(tmp_path: Path) -> None:
    files = {
        "cfsslpy/__init__.py": "",
        "cfsslpy/a.py": "def f():\n    from cfsslpy.pkg import thing\n",
        "cfsslpy/pkg/__init__.py": "from cfsslpy.pkg.inner import thing\n",
        # a submodule naming its sibling through the package path is not a cycle with the package's __init__
        "cfsslpy/pkg/inner.py": "from cfsslpy.pkg import other\nthing = other\n",
        "cfsslpy/pkg/other.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cfsslpy import a\n",
        "cfsslpy/b.py": "from . import c\n",
        "cfsslpy/c.py": "import cfsslpy.b\n",
        "cfsslpy/d.py": "from cfsslpy import a, b\n",
    }
    write_tree(tmp_path, files)
    graph = import_graph(tmp_path)
    assert graph["cfsslpy.a"] == {"cfsslpy.pkg"}
    assert graph["cfsslpy.pkg.inner"] == {"cfsslpy.pkg.other"}
    assert graph["cfsslpy.d"] == {"cfsslpy.a", "cfsslpy.b"}
    assert cycles(graph) == [
        ["cfsslpy.a", "cfsslpy.pkg", "cfsslpy.pkg.inner", "cfsslpy.pkg.other"],
        ["cfsslpy.b", "cfsslpy.c"],
    ]


# --- private names --------------------------------------------------------------------------------------------


def is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_imports(root: Path = PACKAGE.parent) -> set[tuple[str, str]]:
    """(importer, imported dotted name) for each private cfsslpy name imported from outside its owner.

    The owner of ``cfsslpy.x._y`` is ``cfsslpy.x``: only ``cfsslpy.x`` itself, or a submodule when ``cfsslpy.x``
    is a package, may import it. A sibling submodule borrowing ``_y`` from ``cfsslpy.p.other`` is an offender.
    With several private parts the last one decides: ``cfsslpy.p._impl._x`` belongs to ``cfsslpy.p._impl``.
    """
    found: set[tuple[str, str]] = set()
    for path in python_files(root / "cfsslpy"):
        importer = module_name(path, root)
        for i in imports(path, root):
            dotted = f"{i.module}.{i.name}" if i.name else i.module
            parts = dotted.split(".")
            if parts[0] != "cfsslpy":
                continue
            private = [k for k, part in enumerate(parts) if is_private(part)]
            if not private:
                continue
            owner = ".".join(parts[: private[-1]])
            if importer != owner and not importer.startswith(owner + "."):
                found.add((importer, dotted))
    return found


def test_no_private_names_imported_across_modules() -> None:
    found = sorted(private_imports())
    assert not found, f"private names imported from another module (make them public in their owner, or move them): {found}"


def test_the_private_name_check_knows_owners(tmp_path: Path) -> None:
    files = {
        "cfsslpy/__init__.py": "__version__ = '1'\n",
        "cfsslpy/a.py": "from cfsslpy import __version__\nfrom cfsslpy.b import _hidden, shown\n",
        "cfsslpy/b.py": "def f():\n    from cfsslpy.pkg._impl import _x\n",
        "cfsslpy/pkg/__init__.py": "from cfsslpy.pkg._impl import _x\nfrom ._impl import y\n",
        "cfsslpy/pkg/_impl.py": "from cfsslpy.pkg import _helper\n",
        "cfsslpy/pkg/sib.py": "from cfsslpy.pkg.other import _z\n",
        "cfsslpy/c.py": "import cfsslpy.pkg._impl\n",
    }
    write_tree(tmp_path, files)
    assert private_imports(tmp_path) == {
        ("cfsslpy.a", "cfsslpy.b._hidden"),
        ("cfsslpy.b", "cfsslpy.pkg._impl._x"),
        ("cfsslpy.pkg", "cfsslpy.pkg._impl._x"),
        ("cfsslpy.pkg.sib", "cfsslpy.pkg.other._z"),
        ("cfsslpy.c", "cfsslpy.pkg._impl"),
    }


def test_every_package_is_shipped() -> None:
    """pyproject.toml lists packages by name (setuptools does not discover them): a package missing there is
    missing from the wheel and from the single executable, although every test run from the tree passes."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(("cfsslpy", *init.parent.relative_to(PACKAGE).parts))
        for init in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk - listed == set()
