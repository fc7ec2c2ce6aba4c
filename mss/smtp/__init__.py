"""SMTP doors (aiosmtpd): submission (587/465) and the operator MX (25); the pipeline decides."""
