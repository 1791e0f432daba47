"""What differs between POSIX and Windows, one module per concern: signals
(termination and deferral), files (exclusive creation, modes, no-replace
commits), processes (whether a pid is alive).  The rest of the package asks
these modules and never tests sys.platform itself."""
