"""FHIR R4 views of the annuaire, shaped like the national API (`/fhir/v2`, DOMAIN.md §7).

A script written for the Annuaire Santé FHIR API works against mss by
changing the base URL: same resources (Practitioner, PractitionerRole,
Organization), same search parameters (`mailbox-mss`, `mailbox-mss-type`,
`family`, `given`, `name`, `identifier`, `qualification-code`, `_count`…),
`Bundle` of type searchset with `total` and `next` links, pages of 50.

Pure: from the dicts of `lookup` to FHIR JSON, and from query parameters to
a `lookup.Query`. An unknown or malformed parameter is a `FhirError` (400
with an OperationOutcome), not silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from mss.annuaire.lookup import Query
from mss.core.digits import ascii_digits
from mss.errors import InputError

PAGE = 50
MAX_COUNT = 500
IG = "https://interop.esante.gouv.fr/ig/fhir/annuaire"
V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
ADELI_SYSTEM = "https://adeli.esante.gouv.fr"
PROFESSION_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
)
SAVOIR_FAIRE_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)
MAILBOX_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
STRUCTURE_ID_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"

COMMON = {"_count", "_offset", "_format", "_pretty", "_total", "_lastUpdated", "active"}
PARAMETERS = {
    "Practitioner": COMMON | {"_id", "identifier", "identifier-type", "family", "given",
                              "name", "mailbox-mss", "mailbox-mss-type", "qualification-code"},
    "PractitionerRole": COMMON | {"practitioner", "organization", "role", "mailbox-mss",
                                  "mailbox-mss-type"},
    "Organization": COMMON | {"_id", "identifier", "name", "mailbox-mss", "mailbox-mss-type",
                              "address-postalcode"},
}  # fmt: skip


class FhirError(InputError):
    """A request the FHIR API cannot answer; the text goes into an OperationOutcome,
    with `status` (400, or 406 for a `_format` other than JSON) and its issue `code`."""

    def __init__(self, text: str, status: int = 400, code: str = "invalid") -> None:
        super().__init__(text)
        self.status = status
        self.code = code


# FHIR R4 §3.1.0.1.8 `_format`: we serve JSON only
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
# FHIR R4 §3.1.1.4.2 (search.html#prefix): a date with an optional comparison prefix
_DATE = re.compile(
    r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))?)?)?)?",
    re.ASCII,
)
CHOICES = {"_total": {"none", "estimate", "accurate"}, "_pretty": {"true", "false"},
           "active": {"true", "false"}}  # fmt: skip


def operation_outcome(text: str, code: str = "invalid") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _token(value: str) -> str:
    """The code of a token parameter (`system|code` or `code`)."""
    return value.rsplit("|", 1)[-1].strip()


def _values(value: str) -> tuple[str, ...]:
    """A comma-separated list (FHIR's OR)."""
    return tuple(_token(v) for v in value.split(",") if v.strip())


def _reference(value: str, resource: str) -> str:
    return value.split("/", 1)[1] if value.startswith(f"{resource}/") else value


def parse_search(resource: str, params: Sequence[tuple[str, str]]) -> tuple[Query, bool]:
    """A lookup Query from the search parameters; the bool says `active=false`."""
    allowed = PARAMETERS[resource]
    fields: dict[str, Any] = {"limit": PAGE}
    inactive = False
    for raw_name, value in params:
        name = raw_name.split(":", 1)[0]  # modifiers (:exact, :contains) match like the base
        if name not in allowed:
            raise FhirError(
                f"paramètre de recherche inconnu {raw_name!r} pour {resource}"
                f" (unknown search parameter {raw_name!r} for {resource})"
            )
        _check_value(raw_name, name, value)
        if name == "_count":
            fields["limit"] = _number(raw_name, value, MAX_COUNT)
        elif name == "_offset":
            fields["offset"] = _number(raw_name, value, 10**9)
        elif name == "active":
            inactive = value.strip().lower() == "false"
        elif name == "mailbox-mss":
            fields["mailbox"] = value.strip()
        elif name == "mailbox-mss-type":
            fields["mailbox_type"] = tuple(v.upper() for v in _values(value))
        elif name in ("family", "given", "name"):
            fields[name] = value
        elif name == "qualification-code" or name == "role":
            codes = _values(value)
            fields["profession"] = tuple(c for c in codes if ascii_digits(c))
            fields["savoir_faire"] = tuple(c for c in codes if not ascii_digits(c))
        elif name in ("_id", "identifier", "practitioner") and resource != "Organization":
            fields["national_id"] = _reference(_token(value), "Practitioner")
        elif name in ("_id", "identifier", "organization"):
            fields["structure"] = _reference(_token(value), "Organization")
        elif name == "address-postalcode":
            fields["postcode"] = value
    try:
        return Query(**fields), inactive
    except InputError as exc:  # an unknown mailbox type
        raise FhirError(str(exc)) from None


def _check_value(raw_name: str, name: str, value: str) -> None:
    """The parameters whose values are closed sets or dates: a bad one is refused."""
    if name == "_format" and value.strip().lower() not in JSON_FORMATS:
        raise FhirError(
            f"format non servi, JSON seulement (only JSON is served): _format={value!r}",
            406, "not-supported",
        )  # fmt: skip
    if name in CHOICES and value.strip().lower() not in CHOICES[name]:
        wanted = ", ".join(sorted(CHOICES[name]))
        raise FhirError(f"valeur invalide (invalid value) {raw_name}={value!r}: {wanted}")
    if name == "_lastUpdated" and not _DATE.fullmatch(value.strip()):
        raise FhirError(f"date invalide (invalid date) {raw_name}={value!r}: [préfixe]AAAA-MM-JJ…")


def _number(name: str, value: str, maximum: int) -> int:
    digits = value.strip()
    if not ascii_digits(digits):
        raise FhirError(f"{name} doit être un nombre entier (must be a whole number): {value!r}")
    significant = digits.lstrip("0") or "0"
    return maximum if len(significant) > len(str(maximum)) else min(int(significant), maximum)


# --- resources -------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def mailbox_contact(mailbox: Mapping[str, Any]) -> dict[str, Any]:
    """The MSSanté mailbox as a ContactPoint with the national metadata extension."""
    metadata: list[dict[str, Any]] = [
        {"url": "type", "valueCodeableConcept": _coding(MAILBOX_TYPE_SYSTEM, mailbox["type"])},
        {"url": "digitization", "valueBoolean": mailbox["dematerialisation"]},
    ]
    if mailbox.get("service"):
        metadata.append({"url": "service", "valueString": mailbox["service"]})
    return {
        "system": "email",
        "value": mailbox["address"],
        "extension": [{"url": f"{IG}/StructureDefinition/as-ext-mailbox-mss-metadata",
                       "extension": metadata}],
    }  # fmt: skip


def _identifiers(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    if entry.get("national_id"):
        out.append({"use": "official", "type": _coding(V2_0203, "IDNPS"),
                    "system": IDNPS_SYSTEM, "value": entry["national_id"]})  # fmt: skip
    if entry.get("rpps"):
        out.append({"use": "official", "type": _coding(V2_0203, "RPPS"),
                    "system": RPPS_SYSTEM, "value": entry["rpps"]})  # fmt: skip
    if entry.get("adeli"):
        out.append({"use": "official", "type": _coding(V2_0203, "ADELI"),
                    "system": ADELI_SYSTEM, "value": entry["adeli"]})  # fmt: skip
    return out


def _name(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    name: dict[str, Any] = {"use": "usual"}
    if entry.get("family"):
        name["family"] = entry["family"]
    if entry.get("given"):
        name["given"] = [entry["given"]]
    if entry.get("civilite"):
        name["prefix"] = [entry["civilite"]]
    return [name] if len(name) > 1 else []


def _qualifications(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    if entry.get("profession"):
        p = entry["profession"]
        out.append({"code": _coding(PROFESSION_SYSTEM, p["code"], p["label"])})
    if entry.get("savoir_faire"):
        s = entry["savoir_faire"]
        out.append({"code": _coding(SAVOIR_FAIRE_SYSTEM, s["code"], s["label"])})
    return out


def practitioner(pro: Mapping[str, Any], active: bool = True) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": pro["national_id"],
        "meta": {"profile": [f"{IG}/StructureDefinition/as-dp-practitioner"]},
        "identifier": _identifiers(pro),
        "active": active,
        "name": _name(pro),
        "telecom": [mailbox_contact(m) for m in pro.get("mailboxes", [])],
        "qualification": _qualifications(pro),
    }
    return {k: v for k, v in resource.items() if v or k == "active"}


def practitioner_role(mailbox: Mapping[str, Any]) -> dict[str, Any]:
    """A mailbox of a professional as its PractitionerRole (situation d'exercice)."""
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": resource_id(mailbox["address"]),
        "meta": {"profile": [f"{IG}/StructureDefinition/as-dp-practitionerrole"]},
        "active": True,
        "practitioner": {"reference": f"Practitioner/{mailbox['national_id']}"},
        "code": [_coding(PROFESSION_SYSTEM, p["code"], p["label"])
                 for p in [mailbox.get("profession")] if p],
        "specialty": [_coding(SAVOIR_FAIRE_SYSTEM, s["code"], s["label"])
                      for s in [mailbox.get("savoir_faire")] if s],
        "telecom": [mailbox_contact(mailbox)],
    }  # fmt: skip
    structure = mailbox.get("structure") or {}
    if structure.get("id"):
        resource["organization"] = {"reference": f"Organization/{resource_id(structure['id'])}"}
    return {k: v for k, v in resource.items() if v or k == "active"}


def organization(structure_id: str, mailboxes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    first = mailboxes[0]
    structure = first.get("structure") or {}
    postal = first["postal_address"]
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": resource_id(structure_id),
        "meta": {"profile": [f"{IG}/StructureDefinition/as-dp-organization"]},
        "identifier": [{"use": "official", "system": STRUCTURE_ID_SYSTEM, "value": structure_id}],
        "active": True,
        "name": structure.get("raison_sociale") or structure.get("enseigne") or structure_id,
        "telecom": [mailbox_contact(m) for m in mailboxes],
        "address": [{"line": postal["lines"], "postalCode": postal["postcode"],
                     "country": postal["country"] or None}],
    }  # fmt: skip
    if structure.get("enseigne"):
        resource["alias"] = [structure["enseigne"]]
    return resource


def resource_id(value: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) for a key that may hold other characters."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "-" for c in value)
    return cleaned[:64] or "-"


def bundle(
    base: str, resource: str, query: Query, params: Sequence[tuple[str, str]],
    total: int, resources: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """A searchset Bundle with self, next and previous links."""
    kept = [(k, v) for k, v in params if k not in ("_offset", "_count")]

    def url(offset: int) -> str:
        return f"{base}/{resource}?" + urlencode(
            [*kept, ("_count", str(query.limit)), ("_offset", str(offset))]
        )

    links = [{"relation": "self", "url": url(query.offset)}]
    if query.offset + query.limit < total and query.limit:
        links.append({"relation": "next", "url": url(query.offset + query.limit)})
    if query.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, query.offset - query.limit))})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
             "search": {"mode": "match"}}
            for r in resources
        ],
    }  # fmt: skip
