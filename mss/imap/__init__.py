"""IMAP4rev1 server over the store: pure parser, one do_<command> per command, socket loop."""
