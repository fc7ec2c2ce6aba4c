"""The national whitelist of the MSSanté trust space (espace de confiance), parsed.

ANS publishes it at https://espacedeconfiance.mssante.fr/listeblanchemssante.xml,
namespace `https://listeblanche.mssante.fr/schema`, each domain at
`//Domaine/Nom` (DOMAIN.md §1). The file is parsed as hostile XML (defusedxml:
no entities, no DTD, no network). Its XML signature is not checked here.
"""

from __future__ import annotations

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from mss.core.address import is_valid_domain
from mss.core.errors import CoreValueError

NAMESPACE = "https://listeblanche.mssante.fr/schema"


class WhitelistError(CoreValueError):
    """The file is not a usable whitelist; the message says why."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_whitelist(data: bytes) -> list[str]:
    """The domains of a whitelist file, lower-cased, de-duplicated, in file order."""
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise WhitelistError(f"not a valid XML whitelist: {exc}") from None
    domains: list[str] = []
    for element in root.iter():
        if _local(element.tag) != "Domaine":
            continue
        for child in element:
            if _local(child.tag) == "Nom" and child.text and child.text.strip():
                name = child.text.strip().lower().rstrip(".")
                if not is_valid_domain(name):
                    raise WhitelistError(f"{name!r} is not a domain name")
                if name not in domains:
                    domains.append(name)
    if not domains:
        raise WhitelistError("no //Domaine/Nom element: is this the MSSanté whitelist?")
    return domains
