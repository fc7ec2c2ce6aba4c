"""The annuaire: national directory extractions in (importer), lookups out (lookup, fhir)."""
