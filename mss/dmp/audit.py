"""The DMP's traces as FHIR R4 `AuditEvent` resources, following the ANS guide
"Traçabilité des événements" (TDE 2.0.0, https://interop.esante.gouv.fr/ig/fhir/tde,
`ansforge/interop-ig-fhir-tracabilite-evenements`): each trace one `TDEAuditEvent`
(subtype ..1, period.start 1.., agent ..2 with who 1.., source.observer), all of them a
searchset Bundle (`TDEBundleResultatReponseRechercheTraces`, flux 4 "RechercheTraces").

- type: `audit-event-type#rest`; subtype: the RESTful interaction (`read`, `search-type`,
  `create`, `update`), as the guide's examples; action C/R/U/E; outcome 0, or 4 for an
  access refused (its DMP error in `outcomeDesc`).
- agent: who acted, the requestor: a professional by RPPS (IDNPS `8` + RPPS) or else
  their IDNPS, the patient by INS (NIR OID), a legal representative by their login;
  `purposeOfUse` ETREAT for the emergency modes (bris de glace, centre 15).
- entity: the patient (INS) and the document (its unique id, title, version).

Who may read them, and what a patient never reads (documents invisible to them), is
`consultation.read_traces`'s rule: this module only renders what it returned. Pure but
for the documents it looks up by id (`trace_documents`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from mss.core.digits import ascii_digits
from mss.dmp.access import Actor
from mss.store import dmp as stored
from mss.store.dmp import StoredDocument
from mss.store.sql import Conn

TDE = "https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/"
EVENT_PROFILE = TDE + "tde-auditevent"
BUNDLE_PROFILE = TDE + "TDEBundleResultatReponseRechercheTraces"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"  # DOMAIN.md §6
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"  # the national id of a professional
RPPS = "https://rpps.esante.gouv.fr"  # as the guide's PractitionerExample
NAMESPACE = uuid.UUID("6f1c3a52-3f0e-5b5e-9a43-6d6d70747261")  # ids of the traces' events

REST = {"system": TERMINOLOGY + "audit-event-type", "code": "rest", "display": "RESTful Operation"}
INTERACTION = "http://hl7.org/fhir/restful-interaction"
# trace action → (interaction, FHIR action); with a document, `consult` is a read
ACTIONS = {
    "consult": ("search-type", "E"), "consult+doc": ("read", "R"), "refused": ("search-type", "E"),
    "refused+doc": ("read", "R"), "deposit": ("create", "C"), "authorize": ("create", "C"),
}  # fmt: skip
UPDATE = ("update", "U")  # mask, unmask, reveal, block, name_treating, settings…
EMERGENCY = {"system": TERMINOLOGY + "v3-ActReason", "code": "ETREAT",
             "display": "Emergency Treatment"}  # fmt: skip
ROLE_CLASS = TERMINOLOGY + "v3-RoleClass"
PERSON = {"system": TERMINOLOGY + "audit-entity-type", "code": "1", "display": "Person"}
OBJECT = {"system": TERMINOLOGY + "audit-entity-type", "code": "2", "display": "System Object"}
PATIENT_ROLE = {"system": TERMINOLOGY + "object-role", "code": "1", "display": "Patient"}
REPORT_ROLE = {"system": TERMINOLOGY + "object-role", "code": "3", "display": "Report"}
SERVER = {"system": TERMINOLOGY + "security-source-type", "code": "4",
          "display": "Application Server"}  # fmt: skip


def trace_documents(
    conn: Conn, ins: str, traces: list[dict[str, Any]]
) -> dict[int, StoredDocument]:
    """The documents the traces name (every version), by id."""
    ids = {t["document_id"] for t in traces if t["document_id"]}
    found = (stored.document(conn, ins, i) for i in ids)
    return {doc.id: doc for doc in found if doc is not None}


def audit_bundle(
    traces: list[dict[str, Any]], ins: str, documents: Mapping[int, StoredDocument], *,
    site: str, url: str,
) -> dict[str, Any]:  # fmt: skip
    """The traces (newest first) as a searchset Bundle of TDEAuditEvent."""
    events = [audit_event(t, ins, documents.get(t["document_id"] or 0), site) for t in traces]
    return {
        "resourceType": "Bundle", "meta": {"profile": [BUNDLE_PROFILE]}, "type": "searchset",
        "total": len(events), "link": [{"relation": "self", "url": url}],
        "entry": [{"fullUrl": f"urn:uuid:{e['id']}", "resource": e, "search": {"mode": "match"}}
                  for e in events],
    }  # fmt: skip


def audit_event(
    trace: dict[str, Any], ins: str, document: StoredDocument | None, site: str
) -> dict[str, Any]:
    """One trace as a TDEAuditEvent."""
    at = dt.datetime.fromisoformat(trace["at"]).astimezone(dt.UTC).isoformat()
    key = trace["action"] + ("+doc" if trace["document_id"] else "")
    interaction, action = ACTIONS.get(key) or ACTIONS.get(trace["action"]) or UPDATE
    event: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": str(uuid.uuid5(NAMESPACE, f"{trace['id']}")),
        "meta": {"profile": [EVENT_PROFILE]}, "type": REST,
        "subtype": [{"system": INTERACTION, "code": interaction}], "action": action,
        "period": {"start": at, "end": at}, "recorded": at, "outcome": "0",
        "agent": [_agent(trace, ins)],
        "source": {"site": site, "observer": {"display": f"mss DMP ({site})"}, "type": [SERVER]},
        "entity": [_patient(ins)] + ([_document(document)] if document is not None else []),
    }  # fmt: skip
    if trace["action"] == "refused":
        event["outcome"] = "4"  # minor failure: the access was refused
        error = (trace["detail"] or {}).get("error", "")
        event["outcomeDesc"] = f"accès refusé (access refused) : {error}".strip()
    return event


def _agent(trace: dict[str, Any], ins: str) -> dict[str, Any]:
    actor = trace["actor"]
    agent: dict[str, Any]
    if trace["actor_kind"] != Actor.PATIENT.value:
        agent = {"type": _role("PROV", "healthcare provider"), "who": _professional(actor)}
    elif actor == ins:
        agent = {"type": _role("PAT", "patient"), "who": {"identifier": _ins(ins)}}
    else:  # a legal representative, by their login
        agent = {"type": _role("GUARD", "guardian"), "who": {"identifier": {"value": actor}}}
    agent["requestor"] = True
    if trace["mode"] in ("bris_de_glace", "centre15"):
        agent["purposeOfUse"] = [{"coding": [EMERGENCY], "text": trace["mode"]}]
    return agent


def _professional(national_id: str) -> dict[str, Any]:
    """RPPS when the national id is an RPPS one (IDNPS `8` + 11 digits), else the IDNPS."""
    if len(national_id) == 12 and national_id.startswith("8") and ascii_digits(national_id):
        return {"identifier": {"system": RPPS, "value": national_id[1:]}}
    return {"identifier": {"system": IDNPS, "value": national_id}}


def _role(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": ROLE_CLASS, "code": code, "display": display}]}


def _ins(ins: str) -> dict[str, str]:
    return {"system": INS_NIR, "value": ins}


def _patient(ins: str) -> dict[str, Any]:
    return {"what": {"identifier": _ins(ins)}, "type": PERSON, "role": PATIENT_ROLE}


def _document(doc: StoredDocument) -> dict[str, Any]:
    return {
        "what": {"identifier": {"value": doc.unique_id}, "display": doc.title or doc.unique_id},
        "type": OBJECT, "role": REPORT_ROLE, "name": doc.title or doc.unique_id,
        "detail": [{"type": "version", "valueString": str(doc.version)},
                   {"type": "typeCode", "valueString": doc.type_code}],
    }  # fmt: skip
