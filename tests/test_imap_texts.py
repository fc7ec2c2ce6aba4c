"""Every IMAP refusal a person may read is French with its English meaning in
parentheses (issue 14: mail clients show a NO or BAD's text to the professional)."""

from __future__ import annotations

import re

import pytest

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, mailbox
from .test_imap_starttls import _tls

__all__ = ["mailbox"]  # a fixture shared with test_imap_commands.py

# "<tag> NO|BAD [CODE] <French> (<English>…)"
_REFUSAL = re.compile(rb"^\S+ (NO|BAD) (\[[^\]]*\] )?(?P<text>.*)$")
_BILINGUAL = re.compile(r"\S.* \([A-Za-z][^()]*\)")
_FRENCH = re.compile(
    r"\b(le|la|les|de|des|du|en|un|une|non|sous|seulement|utilisez|inconnue?|invalide|déjà|"
    r"syntaxe|commande|aucune?|trop|partie|attendu|et|demande)\b|d'|[éèàêç]"
)

CLEARTEXT = ["LOGIN marie secret", "AUTHENTICATE PLAIN", "FROBNICATE", 'LIST "" ']
UNDER_TLS = [
    "STARTTLS",
    "FETCH 999 FLAGS",
    "SEARCH CHARSET KOI8-R ALL",
    "THREAD FOO UTF-8 ALL",
    "SELECT",
    'CREATE "Tri" (USE (\\Bidon))',
    "UID FETCH 1:* (FLAGS) (VANISHED)",
    "AUTHENTICATE FOO",
    'GETQUOTA "autre"',
    'SETQUOTA "" (STORAGE 1)',
]


def _assert_bilingual(command: str, tagged: bytes) -> None:
    match = _REFUSAL.match(tagged.rstrip(b"\r\n"))
    assert match is not None, (command, tagged)
    text = match["text"].decode()
    assert _BILINGUAL.fullmatch(text), (command, text)
    assert _FRENCH.search(text.split(" (", 1)[0].lower()), (command, text)


@pytest.mark.parametrize("command", CLEARTEXT)
async def test_imap_refusals_in_clear_are_french_with_english(
    mailbox: Running, command: str
) -> None:
    client = await connect(mailbox, "imap")
    try:
        reply = await client.command(command)
    finally:
        await client.close()
    assert reply.status in ("NO", "BAD")
    _assert_bilingual(command, reply.tagged)


async def test_imap_refusals_under_tls_are_french_with_english(mailbox: Running) -> None:
    client = await connect(mailbox, "imap")
    try:
        assert (await client.command("STARTTLS")).ok
        await _tls(client, mailbox)
        await client.login(USER, PASSWORD)
        assert (await client.command("SELECT INBOX")).ok
        for command in UNDER_TLS:
            reply = await client.command(command)
            assert reply.status in ("NO", "BAD"), (command, reply.tagged)
            _assert_bilingual(command, reply.tagged)
    finally:
        await client.close()
