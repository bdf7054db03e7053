"""The import graph the style guide promises, checked by walking the package with ``ast``.

* the core (everything in ``cfsslpy/`` outside ``cli/`` and ``api/``) never imports ``cfsslpy.cli``,
  ``cfsslpy.api``, ``argparse`` or ``bottle``;
* only ``cfsslpy/pkcs11.py`` imports the ``pkcs11`` package (and lazily, inside a function);
* ``errors``, ``pem`` and ``inputs`` sit at the bottom: from cfsslpy they import nothing but ``errors``.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
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
                found.append(Import(target, child.lineno, not in_function))
                # "from cfsslpy import errors" names a submodule
                for alias in child.names:
                    found.append(Import(f"{target}.{alias.name}", child.lineno, not in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def python_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


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
    if path.relative_to(PACKAGE).as_posix() == "pkcs11.py":
        assert all(not i.top_level for i in uses), "pkcs11 must be imported lazily, inside a function"
    else:
        assert not uses, f"{path.name} imports the pkcs11 package at lines {[i.line for i in uses]}"


@pytest.mark.parametrize("name", sorted(BOTTOM))
def test_the_bottom_modules_import_only_errors_from_cfsslpy(name: str) -> None:
    path = PACKAGE / f"{name}.py"
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
