"""Submission (587 STARTTLS / 465 TLS): authentication, sender ownership, limits, extensions."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl

import aiosmtplib
import pytest

from mss.store.models import AccountKind

from .harness import PASSWORD, Running, message

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@hopital.mssante.test"


async def test_nothing_but_starttls_before_tls(mss: Running) -> None:
    client = mss.smtp()
    await client.connect()
    try:
        reply = await client.ehlo()
        assert "STARTTLS" in reply.message
        assert "AUTH" not in reply.message
        code, text = await client.execute_command(b"AUTH", b"PLAIN", b"AGpAAHg=")
        assert code == 530 and "STARTTLS" in text
        code, _ = await client.execute_command(b"MAIL", b"FROM:<" + JEAN.encode() + b">")
        assert code == 530
    finally:
        client.close()


async def test_ehlo_after_tls_advertises_the_extensions(mss: Running) -> None:
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        reply = await client.ehlo()
    finally:
        client.close()
    for extension in (
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE 26214400",
        "ENHANCEDSTATUSCODES",
        "DSN",
    ):
        assert extension in reply.message
    auth = next(line for line in reply.message.splitlines() if line.startswith("AUTH"))
    assert set(auth.split()[1:]) == {"LOGIN", "PLAIN"}  # no token issuer, no client certificate


async def test_auth_plain_over_starttls_delivers_to_a_local_professional(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    reply = await mss.submit(JEAN, message(JEAN, MARIE), [MARIE])
    assert reply.code == 250 and reply.message.startswith("2.0.0 OK queued as ")
    [stored] = await mss.inbox(MARIE)
    assert b"Subject: Compte rendu" in stored
    assert stored.startswith(b"Received: from ")
    assert b"with ESMTPSA id" in stored
    assert b"Message-ID: <" in stored  # added at submission (RFC 6409 §8.3)


async def test_auth_login_with_smtplib(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)

    def send() -> dict[str, tuple[int, bytes]]:
        with mss.smtplib_client() as client:
            client.ehlo()
            client.esmtp_features["auth"] = "LOGIN"  # force the LOGIN mechanism
            client.login(JEAN, PASSWORD)
            return client.sendmail(JEAN, [MARIE], message(JEAN, MARIE, "Par smtplib"))

    assert await asyncio.to_thread(send) == {}
    assert b"Subject: Par smtplib" in (await mss.inbox(MARIE))[0]


async def test_implicit_tls_port_465_accepts_auth(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    client = aiosmtplib.SMTP(
        hostname="localhost",
        port=mss.ports["submissions"],
        use_tls=True,
        tls_context=mss.client_tls(),
    )
    await client.connect()
    try:
        await client.login(JEAN, PASSWORD)
        await client.sendmail(JEAN, [MARIE], message(JEAN, MARIE, "TLS implicite"))
    finally:
        client.close()
    assert b"TLS implicite" in (await mss.inbox(MARIE))[0]


async def test_a_connection_on_465_logs_no_false_alarm(
    mss: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """aiosmtpd, which only knows STARTTLS, warned at every implicit-TLS connection that
    AUTH did not require TLS: a false alarm (every byte on 465 is encrypted) in the
    operator's log, once per connection. AUTH before TLS on 587 is still refused."""
    await mss.add_pro(JEAN)
    client = aiosmtplib.SMTP(hostname="localhost", port=mss.ports["submissions"],
                             use_tls=True, tls_context=mss.client_tls())  # fmt: skip
    with caplog.at_level(logging.WARNING):
        await client.connect()
        try:
            await client.login(JEAN, PASSWORD)
        finally:
            client.close()
    assert [r.getMessage() for r in caplog.records if r.name == "mail.log"] == []


def _plain(user: str, password: str) -> bytes:
    import base64

    return base64.b64encode(f"\0{user}\0{password}".encode())


async def test_wrong_password_is_refused_then_throttled(mss: Running) -> None:
    await mss.add_pro(JEAN)
    client = mss.smtp()
    await client.connect()
    await client.starttls()
    await client.ehlo()
    codes = []
    for _ in range(6):
        code, _ = await client.execute_command(b"AUTH", b"PLAIN", _plain(JEAN, "mauvais"))
        codes.append(code)
    # the right password, but the address is now throttled: nothing is checked
    code, text = await client.execute_command(b"AUTH", b"PLAIN", _plain(JEAN, PASSWORD))
    client.close()
    assert codes == [535] * 5 + [454]
    assert (code, text[:5]) == (454, "4.7.0")


async def test_spoofed_envelope_sender_is_refused(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
        await mss.submit(JEAN, message(MARIE, JEAN), [JEAN], mail_from=MARIE)
    assert info.value.code == 550
    assert "5.7.1" in info.value.message


async def test_spoofed_from_header_is_refused(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, message(f"Marie <{MARIE}>", JEAN), [JEAN])
    assert info.value.code == 550
    assert "5.7.1" in info.value.message and "From" in info.value.message
    assert await mss.inbox(JEAN) == []


async def test_unknown_local_mailbox_is_550_5_1_1(mss: Running) -> None:
    await mss.add_pro(JEAN)
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await mss.submit(
            JEAN, message(JEAN, "personne@pro.mssante.test"), ["personne@pro.mssante.test"]
        )
    assert (info.value.code, info.value.message[:5]) == (550, "5.1.1")


async def test_domain_outside_the_trust_space_is_refused(mss: Running) -> None:
    await mss.add_pro(JEAN)
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await mss.submit(JEAN, message(JEAN, "x@gmail.com"), ["x@gmail.com"])
    assert info.value.code == 550
    assert info.value.message.startswith("5.7.1")
    assert "hors de l'espace de confiance MSSanté" in info.value.message
    assert "outside the MSSanté trust space" in info.value.message


async def test_whitelisted_remote_recipient_is_queued_for_relay(mss: Running) -> None:
    from mss.store.queue import list_entries

    await mss.add_pro(JEAN)
    await mss.trust("autre-operateur.mssante.test")
    reply = await mss.submit(
        JEAN, message(JEAN, "x@autre-operateur.mssante.test"), ["x@autre-operateur.mssante.test"]
    )
    assert reply.code == 250
    [entry] = await mss.store.read(lambda c: list_entries(c))
    assert (entry.rcpt_to, entry.domain, entry.mail_from) == (
        "x@autre-operateur.mssante.test", "autre-operateur.mssante.test", JEAN,
    )  # fmt: skip


async def test_size_limits(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        await client.login(JEAN, PASSWORD)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await client.mail(JEAN, options=["SIZE=30000000"])
        assert info.value.code == 552
    finally:
        client.close()


async def test_message_over_the_size_limit_is_refused_after_data(
    instance_with_small_limit: Running,
) -> None:
    mss = instance_with_small_limit
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    big = message(JEAN, MARIE, body="x" * 900 + "\r\n") * 5
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, big, [MARIE])
    assert info.value.code == 552
    assert await mss.inbox(MARIE) == []


@pytest.fixture
async def instance_with_small_limit(instance):  # type: ignore[no-untyped-def]
    from .harness import running

    async with running(instance, overrides={"limits": {"max_message_size": 4096}}) as server:
        yield server


async def test_too_many_recipients_is_452(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        await client.login(JEAN, PASSWORD)
        await client.mail(JEAN)
        for _ in range(100):
            await client.rcpt(MARIE)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
            await client.rcpt(MARIE)
        assert (info.value.code, info.value.message[:5]) == (452, "4.5.3")
    finally:
        client.close()


async def _raw_session(mss: Running) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TLS connection, authenticated, for byte-exact tests."""
    reader, writer = await asyncio.open_connection(
        "localhost", mss.ports["submissions"], ssl=mss.client_tls(), server_hostname="localhost"
    )
    await reader.readline()
    writer.write(b"EHLO test.example\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    import base64

    token = base64.b64encode(f"\0{JEAN}\0{PASSWORD}".encode())
    writer.write(b"AUTH PLAIN " + token + b"\r\n")
    assert (await reader.readline()).startswith(b"235")
    return reader, writer


async def test_smtp_smuggling_with_bare_lf_is_refused(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    reader, writer = await _raw_session(mss)
    smuggled = (
        f"From: {JEAN}\r\nTo: {MARIE}\r\nSubject: visible\r\n\r\nbody\n.\n"
        f"MAIL FROM:<{JEAN}>\r\nRCPT TO:<{MARIE}>\r\nDATA\r\nFrom: {JEAN}\r\n"
        f"Subject: smuggled\r\n\r\nhidden\r\n.\r\n"
    ).encode()
    writer.write(f"MAIL FROM:<{JEAN}>\r\nRCPT TO:<{MARIE}>\r\nDATA\r\n".encode())
    assert (await reader.readline()).startswith(b"250")
    assert (await reader.readline()).startswith(b"250")
    assert (await reader.readline()).startswith(b"354")
    writer.write(smuggled)
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    assert reply.startswith(b"550 5.6.0"), reply
    assert await mss.inbox(MARIE) == []


async def test_bare_cr_is_refused(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    reader, writer = await _raw_session(mss)
    writer.write(f"MAIL FROM:<{JEAN}>\r\nRCPT TO:<{MARIE}>\r\nDATA\r\n".encode())
    for _ in range(3):
        await reader.readline()
    writer.write(f"From: {JEAN}\r\n\r\nline one\rline two\r\n.\r\n".encode())
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    assert reply.startswith(b"550 5.6.0")


async def test_pipelined_commands_and_dot_stuffing(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    reader, writer = await _raw_session(mss)
    body = (
        f"From: {JEAN}\r\nTo: {MARIE}\r\nSubject: points\r\n\r\n"
        "..ligne qui commence par un point\r\n.\r\n"
    )
    # One write: MAIL, RCPT, DATA, the message and QUIT (RFC 2920).
    writer.write(
        f"MAIL FROM:<{JEAN}>\r\nRCPT TO:<{MARIE}>\r\nDATA\r\n".encode()
        + body.encode()
        + b"QUIT\r\n"
    )
    await writer.drain()
    replies = [await reader.readline() for _ in range(5)]
    writer.close()
    assert [r[:3] for r in replies] == [b"250", b"250", b"354", b"250", b"221"]
    [stored] = await mss.inbox(MARIE)
    assert stored.endswith(b"\r\n\r\n.ligne qui commence par un point\r\n")


async def test_line_longer_than_998_is_refused(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, message(JEAN, MARIE, body="y" * 999 + "\r\n"), [MARIE])
    assert info.value.code == 500


async def test_utf8_addresses_and_8bit_body(mss: Running) -> None:
    await mss.add_pro("élodie@pro.mssante.test")
    await mss.add_pro(MARIE, password=None)
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        await client.login("élodie@pro.mssante.test", PASSWORD)
        await client.sendmail(
            "élodie@pro.mssante.test", [MARIE],
            message("élodie@pro.mssante.test", MARIE, "Résultats", "Bien à vous, Élodie\r\n"),
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )  # fmt: skip
    finally:
        client.close()
    assert "Bien à vous, Élodie".encode() in (await mss.inbox(MARIE))[0]


async def test_dsn_parameters_and_success_notice(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    reply = await mss.submit(
        JEAN,
        message(JEAN, MARIE),
        [MARIE],
        mail_options=["RET=HDRS", "ENVID=env+2B42"],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{MARIE}"],
    )
    assert reply.code == 250
    [notice] = await mss.inbox(JEAN)
    assert b"report-type=delivery-status" in notice
    assert b"Action: delivered" in notice
    assert b"Original-Envelope-Id: env+42" in notice
    assert "Votre message a été remis".encode() in notice


async def test_malformed_dsn_parameter_is_555(mss: Running) -> None:
    await mss.add_pro(JEAN)
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        await client.login(JEAN, PASSWORD)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await client.mail(JEAN, options=["RET=SOMETIMES"])
        assert info.value.code == 555
    finally:
        client.close()


async def _logged_in(mss: Running) -> aiosmtplib.SMTP:
    """A client of Jean's, logged in over STARTTLS."""
    await mss.add_pro(JEAN)
    client = mss.smtp()
    await client.connect()
    await client.starttls()
    await client.login(JEAN, PASSWORD)
    return client


@pytest.mark.parametrize("size", ["\u00b2".encode(), "\u0661\u0662".encode(), b"12a", b""])
async def test_a_size_written_other_than_in_digits_0_to_9_is_a_syntax_error(
    mss: Running, size: bytes
) -> None:
    """SIZE is 1*DIGIT (RFC 1870): '²' (which `int` refuses) and Arabic-Indic digits
    (which it reads as 12) are refused like any other bad value, and the session goes on."""
    client = await _logged_in(mss)
    try:
        code, _ = await client.execute_command(b"MAIL", f"FROM:<{JEAN}>".encode(), b"SIZE=" + size)
        assert code == 501
        code, _ = await client.execute_command(b"MAIL", f"FROM:<{JEAN}>".encode(), b"SIZE=12")
        assert code == 250
    finally:
        client.close()


@pytest.mark.parametrize(
    ("command", "address", "enhanced"),
    [
        (b"MAIL", b"FROM:<\xff@pro.mssante.test>", "5.1.7"),
        (b"RCPT", b"TO:<\xff@pro.mssante.test>", "5.1.3"),
        (b"RCPT", b"TO:<\xed\xa0\x80@pro.mssante.test>", "5.1.3"),  # an encoded surrogate
        (b"RCPT", b"TO:<marie.martin@hopital.mssante.\xff>", "5.1.3"),
    ],
)
async def test_an_address_that_is_not_utf8_is_refused_as_malformed(
    mss: Running, command: bytes, address: bytes, enhanced: str
) -> None:
    """Bytes that are not UTF-8 in an address: 553, the reply echoing them escaped, and
    the session goes on (they used to raise inside the server: 451 and a traceback)."""
    client = await _logged_in(mss)
    try:
        if command == b"RCPT":
            await client.mail(JEAN)
        code, text = await client.execute_command(command, address)
        assert (code, text.split()[0]) == (553, enhanced)
        code, _ = await client.execute_command(b"NOOP")
        assert code == 250
    finally:
        client.close()


async def test_x_mss_headers_are_recorded(mss: Running) -> None:
    import json

    from sqlalchemy import select

    from mss.store.models import message_table

    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    headers = {"X-MSS-CODECDA": "11488-4", "X-MSS-INS": "N", "X-MSS-NIL": "LPS-DEV 1.0"}
    await mss.submit(JEAN, message(JEAN, MARIE, headers=headers), [MARIE])
    stored = await mss.store.read(lambda c: c.execute(select(message_table.c.mss_headers)).scalar())
    assert json.loads(stored) == headers


async def test_applicative_mailbox_logs_in_with_its_certificate(mss: Running) -> None:
    app_address = "lgc@hopital.mssante.test"
    await mss.add_pro(app_address, password=None, kind=AccountKind.APPLICATIVE)
    await mss.add_pro(MARIE, password=None)
    cert, key = mss.pki.issue_applicative(app_address)
    client = mss.smtp(tls_context=mss.client_tls(cert, key))
    await client.connect()
    try:
        await client.starttls()
        ehlo = await client.ehlo()
        assert "EXTERNAL" in ehlo.message
        code, text = await client.execute_command(b"AUTH", b"EXTERNAL", b"=")
        assert code == 235, text
        await client.sendmail(app_address, [MARIE], message(app_address, MARIE, "Depuis le LGC"))
    finally:
        client.close()
    assert b"Depuis le LGC" in (await mss.inbox(MARIE))[0]


async def test_external_without_certificate_fails(mss: Running) -> None:
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        await client.ehlo()
        code, _ = await client.execute_command(b"AUTH", b"EXTERNAL", b"=")
    finally:
        client.close()
    assert code == 535


async def test_patient_cannot_log_in_when_the_setting_is_off(instance) -> None:  # type: ignore[no-untyped-def]
    from .harness import running

    async with running(instance, env={"MSS_POLICY_PATIENT_SMTP_LOGIN": "false"}) as mss:
        address = await mss.add_patient("279035121518989", password=PASSWORD)
        client = mss.smtp()
        await client.connect()
        await client.starttls()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await client.login(address, PASSWORD)
        client.close()


async def test_idle_connection_is_closed(instance) -> None:  # type: ignore[no-untyped-def]
    from .harness import running

    async with running(instance, overrides={"smtp": {"idle_timeout": 1}}) as mss:
        reader, writer = await asyncio.open_connection("127.0.0.1", mss.ports["submission"])
        assert (await reader.readline()).startswith(b"220")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        writer.close()


def test_swaks_submits_over_starttls(mss_sync) -> None:  # type: ignore[no-untyped-def]
    """The real swaks program (Debian package) as a professional's client."""
    import shutil
    import subprocess

    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed (apt-get install swaks)")
    port, ca = mss_sync
    result = subprocess.run(
        ["swaks", "--server", "localhost", "--port", str(port), "--tls", "--tls-ca-path", str(ca),
         "--tls-verify", "--auth", "PLAIN", "--auth-user", JEAN, "--auth-password", PASSWORD,
         "--from", JEAN, "--to", MARIE, "--header", "Subject: Envoyé par swaks"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 OK queued as" in result.stdout


@pytest.fixture
def mss_sync(instance):  # type: ignore[no-untyped-def]
    """A running server in a background thread, for synchronous tests with real programs."""
    import threading

    from .harness import running

    started = threading.Event()
    stop: dict[str, object] = {}
    info: dict[str, object] = {}

    async def main() -> None:
        async with running(instance) as mss:
            await mss.add_pro(JEAN)
            await mss.add_pro(MARIE, password=None)
            info["port"] = mss.ports["submission"]
            info["ca"] = mss.ca
            info["mss"] = mss
            event = asyncio.Event()
            stop["event"] = event
            stop["loop"] = asyncio.get_running_loop()
            started.set()
            await event.wait()
            info["inbox"] = await mss.inbox(MARIE)

    thread = threading.Thread(target=lambda: asyncio.run(main()))
    thread.start()
    assert started.wait(60)
    yield info["port"], info["ca"]
    loop = stop["loop"]
    loop.call_soon_threadsafe(stop["event"].set)  # type: ignore[attr-defined]
    thread.join(60)
    inbox = info.get("inbox")
    assert inbox, "swaks's message did not reach the mailbox"
    assert "Envoyé par swaks".encode() in inbox[0]  # type: ignore[index]


async def test_smtplib_rejects_unverified_server_certificate(mss: Running) -> None:
    """The server presents the dev PKI certificate: a client trusting nothing else refuses it."""

    def connect() -> None:
        with smtplib.SMTP("localhost", mss.ports["submission"], timeout=10) as client:
            client.starttls(context=ssl.create_default_context())

    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(connect)


@pytest.mark.parametrize("field", ["From", "Sender", "Reply-To", "FROM"])
async def test_a_header_naming_the_author_twice_is_refused(mss: Running, field: str) -> None:
    """Issue 14 (RFC 5322 §3.6): From, Sender and Reply-To appear once; twice, readers may
    each show another author: refused at submission (and the MX, see test_smtp_mx)."""
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    raw = message(JEAN, MARIE)
    raw = raw.replace(b"\r\n\r\n", f"\r\n{field}: {JEAN}\r\n{field}: {MARIE}\r\n\r\n".encode(), 1)
    if field.lower() == "from":
        raw = raw.replace(f"From: {JEAN}\r\n".encode(), b"", 1)  # the two are the added ones
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, raw, [MARIE])
    assert (info.value.code, info.value.message[:5]) == (550, "5.6.0")
    assert "en double" in info.value.message and "twice" in info.value.message
    assert await mss.inbox(MARIE) == []


@pytest.mark.parametrize(
    "field",
    ["Subject", "Message-ID", "In-Reply-To", "References", "Date", "To", "Content-Type",
     "X-MSS-MES", "Disposition-Notification-To", "subject"],
)  # fmt: skip
async def test_a_header_field_allowed_once_twice_is_refused(mss: Running, field: str) -> None:
    """Issue 14: a field RFC 5322/2045 (or the ANS) allows once, given twice: the rules
    ([FIN], the conversation, the MDN) might judge the one the reader does not see."""
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    values = {"x-mss-mes": "FIN", "content-type": "text/plain", "to": MARIE,
              "date": "Sun, 22 Nov 2026 10:00:00 +0100"}  # fmt: skip
    value = values.get(field.lower(), "<a@pro.mssante.test>")
    raw = message(JEAN, MARIE, "[FIN]")
    raw = raw.replace(b"\r\n\r\n", f"\r\n{field}: {value}\r\n{field}: {value}\r\n\r\n".encode(), 1)
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, raw, [MARIE])
    assert (info.value.code, info.value.message[:5]) == (550, "5.6.0")
    assert await mss.inbox(MARIE) == []


async def test_too_many_header_fields_is_refused(mss: Running) -> None:
    """Issue 14: fields past the parser's limit would go unchecked (a second From, a
    Content-Type declaring what the rules never saw): the message is refused whole."""
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    padding = b"".join(b"X-A: b\r\n" for _ in range(2100))
    raw = message(JEAN, MARIE).replace(b"\r\n\r\n", b"\r\n" + padding + b"\r\n", 1)
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, raw, [MARIE])
    assert (info.value.code, info.value.message[:5]) == (552, "5.3.4")
    assert "too many header fields" in info.value.message
    assert await mss.inbox(MARIE) == []
