"""Security building blocks: TLS contexts, the dev PKI, DKIM keys, passwords, tokens."""
