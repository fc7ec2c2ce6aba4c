"""The annuaire: national directory extractions and lookups. Empty until issue #5 lands."""
