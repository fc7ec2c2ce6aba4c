"""The durable store: accounts, mailboxes, messages, patients, conversations, blobs."""
