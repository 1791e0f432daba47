"""Phase sequencing: backup and restore in the documented ntdsbcli call order."""
