"""The delivery pipeline: recipients, conversation rules, DKIM, relay. Empty until issue #3."""
