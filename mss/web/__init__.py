"""HTTPS front end (FastAPI): health and metrics now; annuaire, FHIR, DMP and the
patient space as their issues land."""
