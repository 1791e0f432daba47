"""Shared fixtures: an emulator root per test, small emulated DCs, the provider."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ESE_SAMPLES = SHARED_DATA / "ese-samples"

@pytest.fixture
def emu_root(tmp_path, monkeypatch) -> Path:
    """A fresh emulator root, exported as NTDSB_EMU_ROOT for the emulator library."""
    root = tmp_path / "emu"
    root.mkdir()
    monkeypatch.setenv("NTDSB_EMU_ROOT", str(root))
    return root

@pytest.fixture
def provider():
    from ntdsbackup import open_provider

    return open_provider()

@pytest.fixture
def make_dc(emu_root):
    """make_dc(name="DC01", size=4 MiB, **create kwargs) -> EmulatedDC (online)."""
    from ntdsbackup.emulator import EmulatedDC

    def make(name: str = "DC01", size: int = 4 << 20, **kwargs) -> EmulatedDC:
        kwargs.setdefault("log_size", 256 << 10)
        kwargs.setdefault("log_count", 4)
        dc = EmulatedDC(name, emu_root)
        dc.create(size, **kwargs)
        return dc

    return make

@pytest.fixture
def dc(make_dc):
    return make_dc()

def ese_sample(name: str) -> Path:
    path = ESE_SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared sample {name} is not present next to the project")
    return path
