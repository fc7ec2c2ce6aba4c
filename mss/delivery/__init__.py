"""The delivery pipeline: sender and recipient checks, the conversation rules, the one parse
and its named steps, and the outbox handlers of mail (relay, DMP deposits, MDNs)."""
