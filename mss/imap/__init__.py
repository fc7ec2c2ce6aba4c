"""IMAP4rev1 server over the store. Empty until issue #4 lands."""
