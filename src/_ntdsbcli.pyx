# cython: language_level=3
"""ntdsbackup._ntdsbcli: the compiled core.

Loads an ntdsbcli provider (the real ntdsbcli.dll or the emulated DC), owns
backup and restore handles (End is called on every path), releases the GIL
around whole blocks of engine work, and maps status codes to exceptions
through ntdsbackup.errors.  Each part lives in its own include file.
"""

import os as _os

include "pyx/libs.pxi"
include "pyx/abi.pxi"
include "pyx/pages.pxi"
include "pyx/engine.pxi"
include "pyx/age.pxi"
include "pyx/provider.pxi"
include "pyx/restore.pxi"
include "pyx/ese.pxi"
