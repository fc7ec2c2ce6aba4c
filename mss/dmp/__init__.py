"""The DMP: documents of mail and of the API, deposit, consultation, the patient's choices,
access rules (habilitations, masking, invisibility) and hash-chained traces."""
