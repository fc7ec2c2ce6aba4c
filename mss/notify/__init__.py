"""Patient notifications (outbox senders). Empty until their issue lands."""
