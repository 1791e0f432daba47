"""The package's layering, checked from the import statements: the product
(phases, archive, provider, platform, the iterator API) never imports the
emulator or the command line, and the command-line modules import each
other without circles."""

from __future__ import annotations

import ast
from pathlib import Path

import ntdsbackup

PACKAGE = Path(ntdsbackup.__file__).resolve().parent
PRODUCT = ["phases", "archive", "platform", "provider.py", "provider_paths.py", "stream.py",
           "errors.py", "lists.py", "ese.py", "fsutil.py", "__init__.py"]


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the ntdsbackup modules `path` imports (anywhere in it)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ntdsbackup")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("ntdsbackup"):
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
    return out


def _files(*entries: str) -> list[Path]:
    files = []
    for entry in entries:
        p = PACKAGE / entry
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return files


def test_the_product_never_imports_the_emulator_or_the_cli():
    for path in _files(*PRODUCT):
        bad = {m for m in _imports(path) if m.startswith(("ntdsbackup.emulator",
                                                           "ntdsbackup.cli"))}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_the_emulator_never_imports_the_cli():
    for path in _files("emulator"):
        bad = {m for m in _imports(path) if m.startswith("ntdsbackup.cli")}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_no_import_cycles_in_the_cli():
    modules = {_module(p): p for p in _files("cli") if p.name != "__init__.py"}
    graph = {m: {i for i in _imports(p) if i in modules} for m, p in modules.items()}

    def visit(m, stack):
        assert m not in stack, " -> ".join([*stack, m])
        for nxt in graph[m]:
            visit(nxt, [*stack, m])

    for m in graph:
        visit(m, [])
    # The command groups are leaves: none imports another.
    groups = {m for m in modules if m.endswith("_cmd")}
    for m in groups:
        assert not graph[m] & groups, f"{m} imports {sorted(graph[m] & groups)}"
