"""The DMP service: deposits, consultations and the patient's choices, traced.

Each operation is one function on a transaction (`Tx`) or a read connection
(`Conn`): it loads the record's state, asks the rules of `access.py`, changes
the store (`store/dmp.py`), and appends a trace in the same transaction
(`traces.py`), so that what happened and its trace commit together.
Notification events (first access by a professional, new document) are written
in that transaction too (`records.notify`). The API (`web/dmp.py`) and the mail
deposit (`delivery/deposits.py`) call these; the patient space will as well.

This module names the operations; they live by family:
- `deposit.py`: depositing documents (new documents, new versions);
- `consultation.py`: professionals' authorisations, search, reading, revealing a
  document to the patient, the history;
- `choices.py`: the patient's documents and choices (masking, médecins traitants
  DMP, blocking, closing, oppositions);
- `records.py`: what they share (settings, a new document, the record's state).
"""

from __future__ import annotations

from mss.dmp.choices import patient_documents, set_masked, set_people, set_record
from mss.dmp.consultation import (
    authorize,
    consult,
    read_document,
    read_traces,
    reveal_to_patient,
    search_documents,
)
from mss.dmp.deposit import Deposited, deposit, deposit_by_patient
from mss.dmp.records import (
    BLOCKED,
    HIDDEN_REPR,
    INVISIBLE,
    MASKED,
    TREATING,
    NewDocument,
    Settings,
    count_documents,
    document_dict,
    record_state,
)
from mss.store.dmp import Search

__all__ = [
    "BLOCKED",
    "HIDDEN_REPR",
    "INVISIBLE",
    "MASKED",
    "TREATING",
    "Deposited",
    "NewDocument",
    "Search",
    "Settings",
    "authorize",
    "consult",
    "count_documents",
    "deposit",
    "deposit_by_patient",
    "document_dict",
    "patient_documents",
    "read_document",
    "read_traces",
    "record_state",
    "reveal_to_patient",
    "search_documents",
    "set_masked",
    "set_people",
    "set_record",
]
