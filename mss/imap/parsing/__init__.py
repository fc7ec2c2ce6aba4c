"""Pure IMAP parsing: bytes in, typed commands out; no I/O."""
