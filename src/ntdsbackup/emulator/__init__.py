"""Emulated domain controllers: everything about them on the Python side.

An emulated DC is a folder under the emulator root (its NTDS directory with
a real-format ESE database, checkpoint and logs, its configuration and
state); the bundled library (src/emu) serves the ntdsbcli API over it.  This
package creates and manages those folders (dc), reads and writes their
configuration (config), and generates and checks their ESE files (data).
The product (phases, archive, provider) never imports it: it speaks to an
emulated DC only through the ntdsbcli API, like to a real one.
"""

from ..provider_paths import default_emu_root, emu_root
from .config import Account, DCConfig
from .dc import EmulatedDC, RestoreState, status_text, use_emu_root

__all__ = ["Account", "DCConfig", "EmulatedDC", "RestoreState", "default_emu_root", "emu_root",
           "status_text", "use_emu_root"]
