"""The DMP: deposit of documents and access rules. Empty until issue #6 lands."""
