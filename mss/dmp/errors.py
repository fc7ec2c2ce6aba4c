"""The DMP's errors (DOMAIN.md §5), with the ANS acknowledgement codes they map to.

DMP-compatible software shows the names (`DMPPatientNotFound`…); the MDN of a
document mail carries the numeric code and its French label (`902^Patient
inconnu`).
"""

from __future__ import annotations

from mss.errors import MssError

# ANS acknowledgement codes of a document mail (DOMAIN.md §5, "Acknowledgements")
MDN_LABELS = {
    900: "Version non supportée",
    901: "L'auteur ne peut pas remplacer ou supprimer ce document",
    902: "Patient inconnu",
    903: "INS absent du document",
    904: "INS du document différent de celui du destinataire",
    905: "INS incomplet",
    906: "Autre erreur",
}


class DMPError(MssError):
    """A refusal of the DMP; `name` is what professional software shows."""

    name = "DMPError"
    mdn_code = 906

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        self.traced = False  # a refused access already traced (its trace must commit)

    @property
    def mdn_label(self) -> str:
        return MDN_LABELS[self.mdn_code]


class DMPPatientNotFound(DMPError):
    name = "DMPPatientNotFound"
    mdn_code = 902


class DMPDocumentNotFound(DMPError):
    """No such document, or one the patient may not see: the same refusal (no oracle)."""

    name = "DMPDocumentNotFound"

    def __init__(self, text: str = "document inconnu dans ce DMP (no such document in this DMP)"):
        super().__init__(text)


class DMPClosed(DMPError):
    name = "DMPClosed"


class DMPAccessForbidden(DMPError):
    name = "DMPAccessForbidden"


class DMPAuthorizationNotFound(DMPError):
    name = "DMPAuthorizationNotFound"


class DMPAuthorizationExpired(DMPError):
    name = "DMPAuthorizationExpired"


class DocumentError(DMPError):
    """A document or an archive that cannot be read or trusted (906 unless said)."""

    name = "DMPInvalidDocument"

    def __init__(self, text: str, mdn_code: int = 906) -> None:
        super().__init__(text)
        self.mdn_code = mdn_code


class MissingINS(DocumentError):
    def __init__(self, text: str) -> None:
        super().__init__(text, 903)


class INSMismatch(DocumentError):
    def __init__(self, text: str) -> None:
        super().__init__(text, 904)


class IncompleteINS(DocumentError):
    def __init__(self, text: str) -> None:
        super().__init__(text, 905)
