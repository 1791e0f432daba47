"""Writing key files: private from the first byte, never through a symlink,
never over an existing file (a key silently replaced loses every backup
encrypted to the old one)."""

from __future__ import annotations

import os
from pathlib import Path

from ..platform.files import commit, create_private, fsync_dir, remove_quietly

__all__ = ["write_private_file"]


def write_private_file(path: os.PathLike[str] | str, data: bytes) -> None:
    """Create `path` with `data`, mode 0600, under a temporary name in the same
    directory first; FileExists if the name is taken."""
    path = Path(path)
    fd, tmp = create_private(path.parent, prefix=".ntdsb-key-")
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        commit(tmp, path, overwrite=False)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        remove_quietly(tmp)
        raise
    fsync_dir(path.parent)      # the new name survives a crash too

