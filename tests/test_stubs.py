"""The compiled module and its type stub name the same public API."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import ntdsbackup
from ntdsbackup import _ntdsbcli

STUB = Path(ntdsbackup.__file__).with_name("_ntdsbcli.pyi")


def _stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | \
                {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    return names, members


def test_stub_lists_every_public_name():
    names, _ = _stub_names()
    public = {n for n in dir(_ntdsbcli) if not n.startswith("_")}
    assert public == names - {"_Context"}


def test_stub_lists_every_method():
    _, members = _stub_names()
    for cls in ("Provider", "BackupContext", "RestoreContext"):
        obj = getattr(_ntdsbcli, cls)
        real = {n for n, _ in inspect.getmembers(obj) if not n.startswith("_")}
        stub = members[cls] | members.get("_Context", set())
        if cls == "Provider":
            stub = members[cls]
        assert real <= stub | {"ended", "guard", "server", "handle", "restricted"}, cls
        assert {n for n in members[cls] if not n.startswith("_")} <= real, cls


def test_package_exports_are_real():
    for name in ntdsbackup.__all__:
        assert hasattr(ntdsbackup, name), name
