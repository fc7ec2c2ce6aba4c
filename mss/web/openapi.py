"""What the OpenAPI description says of the HTTP API beyond the routes' signatures: the
DMP API's request bodies (schemas and examples), its answers, and the refusals of every
route family, so that `/api/openapi.json` describes every route (issue 17).

Documentation only: the routes keep parsing their bodies as they do (a body documented
here with `described_as` is still read as the route's own type), so the refusals stay
the DMP's (`DocumentError`, 422) and not a validator's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from mss.annuaire import fhir

Responses = dict[int | str, dict[str, Any]]
INS_EXAMPLE = "279035121518989"
NATIONAL_ID_EXAMPLE = "810003456789"


class Refusal(BaseModel):
    """How the API refuses: the error's name and its text, French with the English
    meaning in parentheses."""

    error: str = Field(examples=["DMPAccessForbidden"])
    detail: str = Field(examples=["accès refusé (access forbidden)"])


class DMPRefusal(Refusal):
    mdn_code: str | None = Field(
        default=None, description="with DocumentError: the MDN code of the refusal"
    )


class NewDocument(BaseModel):
    """One document to deposit into the patient's DMP."""

    unique_id: str = Field(description="the document's unique id (an OID, or OID^extension)")
    content_base64: str = Field(description="the document's bytes, base64 (RFC 4648 §4)")
    mime_type: str = Field("application/octet-stream", examples=["application/pdf"])
    title: str = Field("", examples=["Compte rendu de consultation"])
    class_code: str = Field("", description="XDS classCode", examples=["11"])
    type_code: str = Field("", description="XDS typeCode (LOINC)", examples=["11488-4"])
    format_code: str = Field("", description="XDS formatCode")
    confidentiality: list[str] = Field(
        default=["N"], description="confidentiality codes: N, INVISIBLE_PATIENT, MASQUE_PS…"
    )
    creation_time: str | None = Field(None, description="ISO 8601", examples=["2026-03-01T10:00"])
    replaces: str | None = Field(None, description="unique id of the version it replaces")


class DepositRequest(BaseModel):
    documents: list[NewDocument] = Field(min_length=1)


class Authorization(BaseModel):
    basis: Literal["presumed", "explicit"] = Field(
        "explicit",
        description="the patient's consent: `presumed` for a member of the care team, "
        "`explicit` otherwise",
    )


# The authorisation's `basis`, as its route reads it (embedded in a JSON object)
BASIS = WithJsonSchema(Authorization.model_json_schema()["properties"]["basis"])


def _unchanged(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # left out: unchanged (null is refused)


class RecordSettings(BaseModel):
    """The patient's choices; a setting left out is unchanged."""

    model_config = ConfigDict(extra="forbid")  # an unknown setting is refused (400)
    closed: bool | SkipJsonSchema[None] = Field(
        None, description="close (true) or reopen (false) the DMP", json_schema_extra=_unchanged
    )
    oppose_bris_de_glace: bool | SkipJsonSchema[None] = Field(
        None, description="refuse access in an emergency", json_schema_extra=_unchanged
    )
    oppose_centre15: bool | SkipJsonSchema[None] = Field(
        None, description="refuse access by the centre 15", json_schema_extra=_unchanged
    )


def described_as(model: type[BaseModel]) -> WithJsonSchema:
    """An annotation that documents a body with `model`'s schema (inlined: no component
    to register) while the route keeps its own type."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return WithJsonSchema(_inline(schema, definitions))


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, definitions) for value in node]
    return node


def body_examples(**examples: Any) -> dict[str, Any]:
    """`openapi_extra` adding named JSON examples to a route's request body."""
    named = {name: {"summary": name.replace("_", " "), "value": value}
             for name, value in examples.items()}  # fmt: skip
    return {"requestBody": {"content": {"application/json": {"examples": named}}}}


# --- refusals -----------------------------------------------------------------------------

_REFUSALS = {
    400: ("InvalidRequest", "a request that cannot be taken (an unknown setting, action…)"),
    401: ("Unauthorized", "no credentials, or wrong ones (`WWW-Authenticate` says which)"),
    403: ("DMPAccessForbidden", "forbidden: no or expired authorisation, blocked, profession"),
    404: ("DMPPatientNotFound", "no such patient (or INS), or no such document"),
    409: ("DMPClosed", "the patient's DMP is closed"),
    422: ("InvalidRequest", "a parameter or body that cannot be read"),
    429: ("TooManyAttempts", "too many failed logins from this address: try again later"),
}


def refusals(*codes: int, model: type[BaseModel] = Refusal) -> Responses:
    """The documented refusals `codes` of a route of the JSON API."""
    return {
        code: {"model": model, "description": _REFUSALS[code][1],
               "content": {"application/json": {"example": {
                   "error": _REFUSALS[code][0], "detail": "… (…)"}}}}
        for code in codes
    }  # fmt: skip


def answer(description: str, example: Any = None, code: int = 200) -> Responses:
    """A documented success answer (JSON, with an example when one is given)."""
    if example is None:
        return {code: {"description": description}}
    return {code: {"description": description, "content": {"application/json": {
        "example": example}}}}  # fmt: skip


NO_CONTENT = answer("done", code=204)
# A professional's DMP route: who they are, what they may, the patient, the record's state
PRO = refusals(401, 403, 404, 409, 422, model=DMPRefusal)
# A patient's DMP route: HTTP Basic, throttled
PATIENT = refusals(400, 401, 404, 422, 429, model=DMPRefusal)

# --- answers of the DMP API ---------------------------------------------------------------

FOUND = {
    "id": 12, "unique_id": "1.2.250.1.999.1.1.7^1", "version": 1, "title": "Compte rendu",
    "mime_type": "application/pdf", "class_code": "11", "type_code": "11488-4",
    "author": NATIONAL_ID_EXAMPLE, "creation_time": "2026-03-01T10:00:00+00:00",
}  # fmt: skip
DEPOSIT = {"documents": [{
    "unique_id": "1.2.250.1.999.1.1.7^1", "content_base64": "JVBERi0xLjcK...",
    "mime_type": "application/pdf", "title": "Compte rendu de consultation",
    "class_code": "11", "type_code": "11488-4", "confidentiality": ["N"],
}]}  # fmt: skip
DEPOSITED = {
    **answer("what was deposited (a document already there: `duplicate`)", {"deposited": [
        {"id": 12, "unique_id": "1.2.250.1.999.1.1.7^1", "version": 1, "duplicate": False}]},
        code=201),
    **refusals(401, 403, 404, 409, 422, model=DMPRefusal),
}  # fmt: skip
READ = {
    200: {"description": "the document's bytes, in its media type; its metadata in the "
          "`X-DMP-Document` header (base64 of JSON)",
          "content": {"application/pdf": {}, "text/xml": {}, "application/octet-stream": {}},
          "headers": {"X-DMP-Document": {"description": "base64 of the metadata (JSON)",
                                         "schema": {"type": "string"}}}},
    **refusals(401, 403, 404, 409, 422, model=DMPRefusal),
}  # fmt: skip


# --- the annuaire -------------------------------------------------------------------------

NOT_IN_ANNUAIRE: Responses = {404: {
    "description": "not in the annuaire",
    "content": {"application/json": {"example": {"detail": "x@y.fr is not in the annuaire"}}},
}}  # fmt: skip
BAD_CRITERION: Responses = {400: {"description": "a criterion that cannot be searched",
                       "content": {"application/json": {"example": {
                           "detail": "unknown mailbox type 'XYZ'"}}}}}  # fmt: skip
INVALID = refusals(422)
FHIR_JSON = "application/fhir+json"
_OUTCOME = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "invalid", "diagnostics": "… (…)"}]}  # fmt: skip


EXAMPLES: dict[str, dict[str, Any]] = {
    "Practitioner": {"resourceType": "Practitioner", "id": "810003456789",
                     "name": [{"family": "DUPONT", "given": ["JEAN"]}]},
    "PractitionerRole": {"resourceType": "PractitionerRole",
                         "practitioner": {"reference": "Practitioner/810003456789"}},
    "Organization": {"resourceType": "Organization", "id": "1234567890",
                     "name": "Cabinet médical"},
}  # fmt: skip


def fhir_refusals(*codes: int) -> Responses:
    """Refusals of the FHIR API: an OperationOutcome."""
    texts = {400: "an unknown search parameter or a value that cannot be read",
             404: "no such resource", 406: "a `_format` other than JSON"}  # fmt: skip
    return {code: {"description": texts[code], "content": {FHIR_JSON: {"example": _OUTCOME}}}
            for code in codes}  # fmt: skip


def fhir_search(resource: str) -> Any:
    """The decorator arguments of a FHIR search: its parameters (read by the route from
    the query itself), its Bundle and its refusals."""
    parameters, example = fhir.PARAMETERS[resource], EXAMPLES[resource]
    documented = [{"name": name, "in": "query", "required": False,
                   "schema": {"type": "string"}, "description": f"FHIR search parameter `{name}`"}
                  for name in sorted(parameters)]  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 1,
              "entry": [{"resource": example}]}  # fmt: skip
    return {
        "responses": {200: {"description": f"a searchset Bundle of {resource}",
                            "content": {FHIR_JSON: {"example": bundle}}},
                      **fhir_refusals(400, 406)},
        "openapi_extra": {"parameters": documented},
    }  # fmt: skip


def fhir_read(resource: str) -> Responses:
    """The answers of a FHIR read: the resource, or an OperationOutcome."""
    found = {"description": f"the {resource}", "content": {FHIR_JSON: {
        "example": EXAMPLES[resource]}}}  # fmt: skip
    return {200: found, **fhir_refusals(400, 404)}
