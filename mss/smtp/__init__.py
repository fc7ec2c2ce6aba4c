"""SMTP listeners (aiosmtpd): submission and the operator MX. Empty until issue #3 lands."""
