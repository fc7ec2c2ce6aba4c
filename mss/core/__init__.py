"""Pure domain code: no I/O, imports nothing of mss outside `core`."""
