"""LIST, LSUB and subscriptions (RFC 3501 §6.3.6–9, RFC 5258 LIST-EXTENDED), EXAMINE's
\\Recent, names that are not modified UTF-7, and a long ID before login: the classes
imaptest's groups listext, subscribe, select, atoms and id check, over real IMAPS."""

from __future__ import annotations

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, connect, deliver, imap, mailbox

__all__ = ["imap", "mailbox"]  # fixtures shared with test_imap_commands.py


async def _lines(imap: RawIMAP, command: str) -> list[str]:
    reply = await imap.command(command)
    assert reply.ok, reply.tagged
    return [line.decode().rstrip("\r\n") for line in reply.lines]


async def _tree(imap: RawIMAP) -> None:
    """Under T: a, b/a, c, d (deleted once subscribed), e/e, f/f and f/g; a, b/a, d, e/e,
    f/f, f/g subscribed."""
    for name in ("T/a", "T/b/a", "T/c", "T/d", "T/e/e", "T/f/f", "T/f/g"):
        assert (await imap.command(f"CREATE {name}")).ok
    for name in ("T/a", "T/b/a", "T/d", "T/e/e", "T/f/f", "T/f/g"):
        assert (await imap.command(f"SUBSCRIBE {name}")).ok
    assert (await imap.command("DELETE T/d")).ok


async def test_create_does_not_subscribe_and_unsubscribe_twice_is_fine(imap: RawIMAP) -> None:
    assert (await imap.command("CREATE Nouveau")).ok
    assert not any("Nouveau" in line for line in await _lines(imap, 'LSUB "" "*"'))
    assert (await imap.command("UNSUBSCRIBE Nouveau")).ok
    assert '* LSUB () "/" INBOX' in await _lines(imap, 'LSUB "" "*"')  # the defaults are


async def test_lsub_shows_the_unsubscribed_parents_of_what_the_pattern_misses(
    imap: RawIMAP,
) -> None:
    """RFC 3501 §6.3.9: `news/%` shows `news/comp` \\Noselect when only a deeper name
    under it is subscribed, whether or not the parent exists."""
    await _tree(imap)
    level = await _lines(imap, 'LSUB "" T/%')
    assert level == ['* LSUB () "/" T/a', '* LSUB (\\Noselect) "/" T/b', '* LSUB () "/" T/d',
                     '* LSUB (\\Noselect) "/" T/e', '* LSUB (\\Noselect) "/" T/f']  # fmt: skip
    assert await _lines(imap, 'LSUB "" *a') == ['* LSUB () "/" T/a', '* LSUB () "/" T/b/a']
    assert (await imap.command("UNSUBSCRIBE T/b/a")).ok
    assert '* LSUB (\\Noselect) "/" T/b' not in await _lines(imap, 'LSUB "" T/%')


async def test_a_deleted_mailbox_stays_subscribed_and_is_listed_nonexistent(
    imap: RawIMAP,
) -> None:
    await _tree(imap)
    found = await _lines(imap, 'LIST (SUBSCRIBED) "" T/*')
    assert '* LIST (\\Subscribed \\NonExistent) "/" T/d' in found
    assert '* LIST (\\Subscribed \\HasNoChildren) "/" T/a' in found
    assert not any(line.endswith(" T/c") for line in found)
    assert not any(line.endswith(" T/d") for line in await _lines(imap, 'LIST "" T/*'))


async def test_recursivematch_gives_childinfo_for_subscribed_children_the_pattern_misses(
    imap: RawIMAP,
) -> None:
    await _tree(imap)
    found = await _lines(imap, 'list (subscribed recursivematch) "" T/b% return (children)')
    assert found == ['* LIST (\\HasChildren) "/" T/b ("CHILDINFO" ("SUBSCRIBED"))']
    # the child matched itself: no parent line
    found = await _lines(imap, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" T*e')
    assert found == ['* LIST (\\Subscribed \\HasNoChildren) "/" T/e/e']
    # f/g does not match: f is shown for it
    found = await _lines(imap, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" T*f')
    assert found == ['* LIST (\\HasChildren) "/" T/f ("CHILDINFO" ("SUBSCRIBED"))',
                     '* LIST (\\Subscribed \\HasNoChildren) "/" T/f/f']  # fmt: skip


async def test_list_return_subscribed_and_several_patterns(imap: RawIMAP) -> None:
    await _tree(imap)
    found = await _lines(imap, 'LIST "" (T/a T/c) RETURN (CHILDREN SUBSCRIBED)')
    assert found == ['* LIST (\\HasNoChildren \\Subscribed) "/" T/a',
                     '* LIST (\\HasNoChildren) "/" T/c']  # fmt: skip
    assert await _lines(imap, 'list "" (t/c) return (subscribed)') == []  # names are exact


@pytest.mark.parametrize(
    "command",
    ['LIST (IMAPTEST) "" ""', 'LIST (RECURSIVEMATCH) "" ""', 'LIST (RECURSIVEMATCH REMOTE) "" ""',
     'LIST "" "" RETURN (IMAPTEST)', 'LIST "" % RETURN (CHILDREN', 'LIST "" % RETURN'],
)  # fmt: skip
async def test_list_extended_syntax_errors_are_bad_without_python_reprs(
    imap: RawIMAP, command: str
) -> None:
    reply = await imap.command(command)
    assert reply.status == "BAD"
    assert b"b'" not in reply.tagged and b'b"' not in reply.tagged
    assert (await imap.command("NOOP")).ok  # the session goes on


async def test_names_that_are_not_modified_utf7(imap: RawIMAP) -> None:
    """A valid command about an impossible name is NO; a pattern that cannot name
    anything lists nothing (imaptest's atoms group)."""
    odd = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    assert (await imap.command(f"SELECT {odd}")).response.startswith(b"NO [CANNOT]")
    assert await _lines(imap, f'LIST "" {odd}%*') == []
    assert (await imap.command("SUBSCRIBE &-AB&")).status == "NO"
    assert await _lines(imap, 'LIST "" ~foo') == []
    assert (await imap.command("SELECT ~foo")).status == "NO"


async def test_rename_carries_subscriptions_along(imap: RawIMAP) -> None:
    await _tree(imap)
    assert (await imap.command("RENAME T/f U")).ok
    found = await _lines(imap, 'LSUB "" U/*')
    assert found == ['* LSUB () "/" U/f', '* LSUB () "/" U/g']
    assert await _lines(imap, 'LSUB "" T/f*') == []


async def test_examine_shows_recent_and_leaves_it_for_select(mailbox: Running) -> None:
    client = await connect(mailbox)
    await client.login(USER, PASSWORD)
    examined = await _lines(client, "EXAMINE INBOX")
    assert "* 2 RECENT" in examined
    await deliver(mailbox, SIMPLE.replace(b"<simple@", b"<third@"))
    told = await _lines(client, "NOOP")
    assert "* 3 EXISTS" in told and "* 3 RECENT" in told
    assert "* 3 RECENT" in await _lines(client, "SELECT INBOX")
    assert "* 0 RECENT" in await _lines(client, "EXAMINE INBOX")
    await client.close()


async def test_a_long_id_before_login(mailbox: Running) -> None:
    """RFC 2971's largest ID (30 pairs, values of 1,024 octets) is answered, not BYE."""
    client = await connect(mailbox)
    pairs = " ".join(f'"k{n:02d}{"x" * 27}" "{"v" * 1024}"' for n in range(30))
    reply = await client.command(f"ID ({pairs})")
    assert reply.ok and reply.lines[0].startswith(b'* ID ("name" "mss"')
    await client.close()
