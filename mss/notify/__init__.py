"""Patient notifications: the DMP already writes their events to the outbox (kind
`notification`); the channels that send them are the notifications issue's work."""
