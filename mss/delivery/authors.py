"""Who wrote a message arriving from another operator, and whether that operator may
speak for them (issue 14, MX sender integrity).

Submission checks its From against the login (`inbound.submission_headers`); the MX
has no login, so it holds the author to what the peer proved:

- **one author**: exactly one mailbox in From, not of a domain hosted here (nor are
  Sender, Resent-From, Resent-Sender), inside the trust space;
- **aligned with the envelope**: to a patient, From is the envelope sender itself (the
  conversation rules judged that address: a doctor's name cannot be put on another
  sender's message); between professionals, the same domain (relaxed alignment, as
  DMARC's, for secretariats and applications writing for a service);
- **vouched for**: the author's domain is one the peer's operator certificate names
  (a dNSName of the certificate, or the domain of a host it names:
  `mx.hopital.fr` speaks for `hopital.fr`), or a DKIM signature that passed has
  `d=` that domain or a parent of it — an operator hosting several domains signs
  for those its certificate does not list;
- **null senders** (`MAIL FROM:<>`) carry reports only (RFC 3464 DSNs, RFC 8098
  MDNs: `multipart/report`), never an ordinary message, and never take part in a
  conversation (`policy.plan`). Their From is still held to the certificate binding.
"""

from __future__ import annotations

from collections.abc import Sequence

from mss.core.mime import ParsedMessage, parse_address_list
from mss.core.mime.headers import param
from mss.delivery.checks import LOCAL_DOMAIN_FROM_OUTSIDE, Recipient, outside_trust_space
from mss.delivery.trust import TrustSpace
from mss.errors import Rejection
from mss.security.dkim import DKIMResult
from mss.security.pki import CertIdentity

REPORT_TYPES = frozenset({"delivery-status", "disposition-notification"})

FROM_MISSING = Rejection(550, "5.6.0", "En-tête From absent (missing From header)")
ONE_AUTHOR = Rejection(
    550,
    "5.7.1",
    "L'en-tête From doit nommer une seule adresse (the From header must name exactly one mailbox)",
)
NULL_SENDER_REPORTS_ONLY = Rejection(
    550,
    "5.7.1",
    "Un expéditeur vide (MAIL FROM:<>) est réservé aux avis de remise et de lecture "
    "(the null sender is for delivery and disposition reports only)",
)
FROM_NOT_ENVELOPE = Rejection(
    550,
    "5.7.1",
    "L'en-tête From d'un message à un patient doit être l'expéditeur de l'enveloppe "
    "(the From header of a message to a patient must be the envelope sender)",
)
FROM_NOT_OWNED = Rejection(
    550, "5.7.1", "L'en-tête From ne correspond pas au compte authentifié "
    "(From header not owned by the authenticated account)",
)  # fmt: skip
SENDER_NOT_OWNED = Rejection(
    550, "5.7.1", "L'en-tête Sender ne correspond pas au compte authentifié "
    "(Sender header not owned by the authenticated account)",
)  # fmt: skip
FROM_NOT_ALIGNED = Rejection(
    550,
    "5.7.1",
    "Le domaine de l'en-tête From n'est pas celui de l'expéditeur de l'enveloppe "
    "(From header domain not aligned with the envelope sender)",
)


def check_submission_authors(message: ParsedMessage, login_address: str) -> None:
    """Submission and the patient space: From names the account that logged in, and
    only it; so does a Sender field (readers show it: "X on behalf of" the author)."""
    if not _mailboxes(message, "From"):
        raise FROM_MISSING
    for name, refusal in (("From", FROM_NOT_OWNED), ("Sender", SENDER_NOT_OWNED)):
        if any(a != login_address.lower() for a in _mailboxes(message, name)):
            raise refusal


def _mailboxes(message: ParsedMessage, name: str) -> list[str]:
    """The addresses of every mailbox the fields `name` give (groups' members too)."""
    found = [a for v in message.headers.get_all(name) for a in parse_address_list(v) or []]
    return [f"{local}@{domain}".lower() for _, _, local, domain in found if local]


def not_vouched(domain: str) -> Rejection:
    return Rejection(
        550,
        "5.7.1",
        f"Le certificat de l'opérateur ne couvre pas le domaine {domain} et aucune signature "
        f"DKIM alignée ne le garantit (operator certificate does not cover {domain}, "
        "no aligned DKIM signature)",
    )


def is_report(message: ParsedMessage) -> bool:
    """A delivery or disposition report (RFC 6522 `multipart/report`)."""
    body = message.body
    return (body.maintype, body.subtype) == ("multipart", "report") and param(
        body.params, "report-type"
    ).lower() in REPORT_TYPES


def check_mx_authors(
    *,
    envelope_sender: str,
    recipients: Sequence[Recipient],
    message: ParsedMessage,
    peer: CertIdentity | None,
    dkim: Sequence[DKIMResult],
    trust: TrustSpace,
) -> None:
    """Raise the Rejection of the first rule (module docstring) the message breaks."""
    if not envelope_sender and not is_report(message):
        raise NULL_SENDER_REPORTS_ONLY
    author = _the_author(message)
    domain = author.rsplit("@", 1)[1]
    if trust.is_local(domain) or any(map(trust.is_local, _other_authors(message))):
        raise LOCAL_DOMAIN_FROM_OUTSIDE
    if not trust.trusted(domain):
        raise outside_trust_space(domain)
    if envelope_sender:
        _aligned(author, envelope_sender, to_patient=any(r.patient_ins for r in recipients))
    if not (_certificate_covers(peer, domain, trust) or _dkim_covers(dkim, domain)):
        raise not_vouched(domain)


def _the_author(message: ParsedMessage) -> str:
    authors = parse_address_list(message.headers.get("From"))
    if not authors:
        raise FROM_MISSING
    if len(authors) != 1 or authors[0][2] is None or not authors[0][3]:
        raise ONE_AUTHOR  # several mailboxes, a group, or no domain
    _name, _route, local, domain = authors[0]
    return f"{local}@{domain}".lower()


def _other_authors(message: ParsedMessage) -> list[str]:
    """The domains of the other fields that name who wrote or sent (Sender, Resent-*):
    a reader shows them ("on behalf of"), so none may be one of ours from outside."""
    names = ("Sender", "Resent-From", "Resent-Sender")
    found = [a for n in names for v in message.headers.get_all(n)
             for a in parse_address_list(v) or []]  # fmt: skip
    return [domain.lower().rstrip(".") for _, _, _, domain in found if domain]


def _aligned(author: str, envelope_sender: str, *, to_patient: bool) -> None:
    sender = envelope_sender.lower()
    if to_patient and author != sender:
        raise FROM_NOT_ENVELOPE
    if author.rsplit("@", 1)[1] != sender.rsplit("@", 1)[1]:
        raise FROM_NOT_ALIGNED


def _certificate_covers(peer: CertIdentity | None, domain: str, trust: TrustSpace) -> bool:
    """A dNSName of the certificate, or the parent domain of a host it names (a name that
    is itself a mail domain of the trust space is a domain, not a host: its operator does
    not speak for the parent, which may be another's)."""
    if peer is None or peer.kind != "operator":
        return False
    return any(name == domain or (name.partition(".")[2] == domain and not trust.trusted(name))
               for name in peer.domains)  # fmt: skip


def _dkim_covers(results: Sequence[DKIMResult], domain: str) -> bool:
    """A passing signature whose d= is the domain or a parent of it (RFC 7489 §3.1.1)."""
    for result in results:
        d = (result.domain or "").lower().rstrip(".")
        if result.result == "pass" and d and (domain == d or domain.endswith("." + d)):
            return True
    return False
