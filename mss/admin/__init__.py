"""The operator's administration: what `mss pro|patient|cert|keys|trust|queue|annuaire|dmp …`
does, one module per family of commands.

Each operation takes the settings and plain values, opens the store for the time of
the operation, and raises `InputError` with one readable line on bad input. The CLI
prints; nothing here does.
"""
