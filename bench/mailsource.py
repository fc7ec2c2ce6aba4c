"""Messages for the IMAP stress tool: an mbox file, or realistic generated mail.

Like imaptest's `mbox=` source, messages are taken in turn and wrap around;
each one appended gets a fresh Message-ID so that the tool can tell which
message a UID holds and check every answer about it against the original.
The generated mail looks like what professionals exchange: plain text in
quoted-printable French, text and HTML alternatives, a PDF attached in
base64, a forwarded message (message/rfc822), folded and encoded headers.
"""

from __future__ import annotations

import base64
import mailbox
import random
import re
from dataclasses import dataclass, field
from email.header import Header
from pathlib import Path

_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", re.IGNORECASE | re.M)

WORDS = [
    "patient", "consultation", "compte", "rendu", "examen", "biologique", "résultat",
    "ordonnance", "traitement", "cardiologie", "échographie", "suivi", "hospitalisation",
    "médecin", "traitant", "courrier", "sortie", "bilan", "radiographie", "thoracique",
    "normale", "prescription", "rendez-vous", "préopératoire", "allergie",
]  # fmt: skip
NAMES = [
    ("Jean Dupont", "jean.dupont@pro.mssante.test"),
    ("Marie Curie", "marie.curie@hopital.mssante.test"),
    ("Secrétariat Cardiologie", "cardio@chu-exemple.mssante.test"),
    ("Paul Durand", "paul.durand@autre.mssante.test"),
    ("Élodie Lefèvre", "elodie.lefevre@pro.mssante.test"),
]


def _text(rng: random.Random, words: int) -> str:
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(WORDS))
        if len(line) > 11:
            lines.append(" ".join(line).capitalize() + ".")
            line = []
    if line:
        lines.append(" ".join(line).capitalize() + ".")
    return "\r\n".join(lines) + "\r\n"


def _qp(text: str) -> bytes:
    import quopri

    return quopri.encodestring(text.encode("utf-8")).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _address(name: str, address: str) -> str:
    if name.isascii():
        return f'"{name}" <{address}>'
    return f"{Header(name, 'utf-8').encode()} <{address}>"


def _headers(rng: random.Random, n: int, subject: str) -> list[str]:
    sender, to = rng.sample(NAMES, 2)
    day = 1 + n % 28
    headers = [
        f"Date: Mon, {day:02d} Sep 2026 {n % 24:02d}:{n % 60:02d}:00 +0200",
        f"From: {_address(*sender)}",
        f"To: {_address(*to)}",
    ]
    if n % 3 == 0:
        cc = rng.choice(NAMES)
        headers.append(f"Cc: {_address(*cc)},\r\n {_address(*rng.choice(NAMES))}")
    if n % 5 == 1:
        headers.append(f"Delivered-To: {to[1]}")
    if n % 4 == 2:
        headers.append(f"In-Reply-To: <orig{n - 1}@pro.mssante.test>")
        headers.append(
            f"References: <root{n // 10}@pro.mssante.test>\r\n <orig{n - 1}@pro.mssante.test>"
        )
    encoded = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    headers.append(f"Subject: {encoded}")
    headers.append("MIME-Version: 1.0")
    return headers


def _plain(rng: random.Random, n: int) -> bytes:
    head = _headers(rng, n, f"Compte rendu n°{n}")
    head += [
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + _qp(_text(rng, rng.randint(40, 400)))


def _alternative(rng: random.Random, n: int) -> bytes:
    text = _text(rng, rng.randint(30, 200))
    html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
    boundary = f"alt-{n}-{rng.randrange(10**6)}"
    head = _headers(rng, n, f"Résultats d'examen {n}")
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + _qp(text)
    body += (
        f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + _qp(html)
    body += f"\r\n--{boundary}--\r\n".encode()
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _attachment(rng: random.Random, n: int, size: int) -> bytes:
    blob = b"%PDF-1.4\n" + rng.randbytes(size)
    encoded = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    return (
        b'Content-Type: application/pdf; name="cr-%d.pdf"\r\n'
        b'Content-Disposition: attachment; filename="cr-%d.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" % (n, n)
    ) + encoded


def _mixed(rng: random.Random, n: int) -> bytes:
    boundary = f"mix-{n}-{rng.randrange(10**6)}"
    head = _headers(rng, n, f"Courrier de sortie {n}")
    head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    body = (
        f"This is a multi-part message in MIME format.\r\n--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + _text(rng, rng.randint(20, 120))
    ).encode()
    body += f"\r\n--{boundary}\r\n".encode() + _attachment(rng, n, rng.randint(2_000, 30_000))
    body += f"\r\n--{boundary}--\r\n".encode()
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _forward(rng: random.Random, n: int) -> bytes:
    boundary = f"fwd-{n}-{rng.randrange(10**6)}"
    inner = _mixed(rng, n + 100_000) if n % 2 else _alternative(rng, n + 100_000)
    inner = b"Message-ID: <inner%d@pro.mssante.test>\r\n" % n + inner
    head = _headers(rng, n, f"Tr: dossier {n}")
    head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "Pour information, voir le message joint.\r\n"
        f"\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + inner
    body += f"\r\n--{boundary}--\r\n".encode()
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def generate(count: int = 200, seed: int = 7) -> list[bytes]:
    """`count` varied messages (CRLF, no Message-ID: `MailSource` adds one)."""
    rng = random.Random(seed)
    makers = [_plain, _plain, _alternative, _mixed, _forward]
    return [makers[n % len(makers)](rng, n) for n in range(count)]


def read_mbox(path: Path) -> list[bytes]:
    out = []
    for message in mailbox.mbox(str(path)):
        raw = message.as_bytes()
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out.append(_MESSAGE_ID.sub(b"", raw))
    if not out:
        raise ValueError(f"{path}: no message in this mbox")
    return out


@dataclass
class MailSource:
    """Messages in turn, each with a unique Message-ID; remembers what it handed out."""

    templates: list[bytes]
    run: str = "run"
    counter: int = 0
    by_message_id: dict[str, bytes] = field(default_factory=dict)

    def next(self) -> tuple[str, bytes]:
        template = self.templates[self.counter % len(self.templates)]
        self.counter += 1
        message_id = f"<stress.{self.run}.{self.counter}@mss.test>"
        raw = f"Message-ID: {message_id}\r\n".encode() + template
        self.by_message_id[message_id] = raw
        return message_id, raw
