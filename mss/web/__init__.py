"""HTTPS front end (FastAPI): the annuaire's JSON and FHIR APIs, the DMP API, health and
metrics; errors rendered by one set of handlers (errors.py)."""
