"""The relay: sends queued mail to the other operators, with mutual TLS.

The outbox runner hands this handler the due `relay` rows it leased (several
processes may run it on one PostgreSQL); they are grouped per message and
destination domain, and sent in one SMTP transaction each: STARTTLS is
mandatory, our operator certificate authenticates us, the peer's certificate
must chain to the trust anchors and match the route's host name. Messages are
DKIM-signed (RSA and Ed25519) at send time. Each recipient's outcome is recorded: sent; retried with
backoff by the runner on 4xx or connection trouble; failed on 5xx or once
`relay.expire_days` have passed, with a DSN (RFC 3464) to the author.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

from mss.core.address import InvalidAddress, parse_address
from mss.core.dsn import RcptDSN, parse_rcpt_param, rcpt_params_text, xtext_encode
from mss.delivery.dsn import RecipientStatus, build_dsn
from mss.delivery.reports import ReportSender
from mss.errors import MssError
from mss.security.dkim import DKIMSigner
from mss.security.tls import peer_certificate, remember_session
from mss.store.api import Store
from mss.store.outbox import OutboxItem
from mss.store.ports import Done, Failed, Outcome, Retry, RetryPolicy
from mss.store.queue import RELAY, QueueEntry, entry_of

log = logging.getLogger(__name__)

Route = Callable[[str], tuple[str, int] | None]


@dataclass(frozen=True, slots=True)
class Attempt:
    entry: QueueEntry
    state: str  # sent, retry, failed
    reply: str = ""  # the peer's reply or our diagnostic
    status: str = ""  # enhanced status code for DSNs
    remote: str | None = None
    relayed_without_dsn: bool = False


class _Temporary(MssError):
    """The whole group must be retried later."""


class RelayHandler:
    """The outbox handler of kind `relay`: one SMTP transaction per message and domain."""

    kind = RELAY

    def __init__(
        self,
        store: Store,
        reports: ReportSender,
        signer: DKIMSigner,
        tls: Callable[[], ssl.SSLContext],
        *,
        hostname: str,
        route: Route,
        mx_lookup: Callable[[str], tuple[str, int] | None] | None = None,
        retry_base: int = 60,
        retry_max: int = 3600,
        expire_days: int = 5,
        timeout: float = 30.0,
        concurrency: int = 8,
        lease: int = 1800,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._reports = reports
        self._signer = signer
        self._tls = tls
        self._hostname = hostname
        self._route = route
        self._mx_lookup = mx_lookup
        self._timeout = timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._clock = clock
        # Expiry (relay.expire_days) ends a delivery, not the attempt count: enough
        # attempts to reach it at the longest backoff, and a margin.
        # A batch of 32 rows in groups of 8 connections ends well within the lease even
        # against slow peers (each SMTP command may take `timeout` seconds).
        self.policy = RetryPolicy(
            base=retry_base, cap=retry_max, lease=lease, batch=32,
            max_attempts=expire_days * 86400 // max(retry_max, 1) + 30,
        )  # fmt: skip

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Send the claimed rows, grouped per message, domain and sender."""
        entries = [entry_of(item) for item in items]
        groups: dict[tuple[int, str, str], list[QueueEntry]] = {}
        for entry in entries:
            groups.setdefault((entry.blob_id, entry.domain, entry.mail_from), []).append(entry)
        results = await asyncio.gather(*(self._send_group(g) for g in groups.values()))
        attempts = _expire([a for group in results for a in group], int(self._clock()))
        await self._notify(attempts)
        by_id = {a.entry.id: a for a in attempts}
        for a in attempts:
            log.info("relay %s to %s: %s %s", a.entry.queue_id, a.entry.rcpt_to, a.state, a.reply)
        return [_outcome(by_id[entry.id]) for entry in entries]

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        """Given up after too many attempts: a DSN to each author who wants failures."""
        reason = "the relay gave up after too many attempts"
        await self._notify([Attempt(entry_of(i), "failed", reason, "4.4.7") for i in items])

    # --- one SMTP transaction --------------------------------------------------------------

    async def _send_group(self, entries: list[QueueEntry]) -> list[Attempt]:
        """One message to one domain: an outcome for every row, whatever goes wrong (a
        group's trouble never reaches the other groups of the batch)."""
        invalid = _invalid_addresses(entries)
        bad = {a.entry.id for a in invalid}
        valid = [e for e in entries if e.id not in bad]
        if not valid:
            return invalid
        async with self._limit:
            try:
                return invalid + await self._transaction(valid)
            except _Temporary as exc:
                reason = str(exc)
            except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
            except Exception as exc:  # a bug: retried later, its traceback logged once here
                log.exception("relay of %s to %s failed", valid[0].queue_id, valid[0].domain)
                reason = f"{exc.__class__.__name__}: {exc}"
        return invalid + [Attempt(e, "retry", reason, "4.4.1") for e in valid]

    async def _target(self, domain: str) -> tuple[str, int]:
        target = self._route(domain)
        if target is None and self._mx_lookup is not None:
            target = await asyncio.to_thread(self._mx_lookup, domain)
        if target is None:
            raise _Temporary(f"no route to {domain} (relay.routes, or enable DNS)")
        return target

    async def _transaction(self, entries: list[QueueEntry]) -> list[Attempt]:
        first = entries[0]
        host, port = await self._target(first.domain)
        raw = await self._store.blob_bytes(first.blob_id)
        try:
            signed = await asyncio.to_thread(self._sign, raw, first.mail_from)
        except Exception as exc:  # dkimpy refuses what it cannot parse: it never will
            reason = f"cannot DKIM-sign the message: {exc.__class__.__name__}: {exc}"
            return [Attempt(e, "failed", reason, "5.6.0") for e in entries]
        tls = self._tls()
        client = aiosmtplib.SMTP(
            hostname=host, port=port, timeout=self._timeout, start_tls=False,
            local_hostname=self._hostname, tls_context=tls,
        )  # fmt: skip
        await client.connect()
        try:
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise _Temporary(f"{host} does not offer STARTTLS")
            await client.starttls(server_hostname=host, tls_context=tls)
            await client.ehlo()
            _tls_established(tls, host, client.get_transport_info("ssl_object"))
            return await self._envelope_and_data(client, entries, signed, host)
        finally:
            client.close()

    async def _envelope_and_data(
        self, client: aiosmtplib.SMTP, entries: list[QueueEntry], message: bytes, host: str
    ) -> list[Attempt]:
        first = entries[0]
        dsn = client.supports_extension("dsn")
        options = []
        if dsn and first.ret:
            options.append(f"RET={first.ret}")
        if dsn and first.envid:
            options.append(f"ENVID={xtext_encode(first.envid)}")
        if client.supports_extension("8bitmime") and any(b > 127 for b in message):
            options.append("BODY=8BITMIME")
        if client.supports_extension("size"):
            options.append(f"SIZE={len(message)}")
        try:
            await client.mail(first.mail_from, options=options)
        except aiosmtplib.SMTPSenderRefused as exc:
            return [_refused(e, exc.code, exc.message, host) for e in entries]
        outcomes: list[Attempt] = []
        accepted: list[QueueEntry] = []
        for entry in entries:
            try:
                await client.rcpt(entry.rcpt_to, options=_rcpt_options(entry) if dsn else [])
                accepted.append(entry)
            except aiosmtplib.SMTPRecipientRefused as exc:
                outcomes.append(_refused(entry, exc.code, exc.message, host))
        if not accepted:
            return outcomes
        try:
            response = await client.data(message)
        except aiosmtplib.SMTPDataError as exc:
            return outcomes + [_refused(e, exc.code, exc.message, host) for e in accepted]
        # the peer took the message at its 250: a QUIT that fails (a peer that hangs up
        # without answering it) must not send the message again
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError):
            await client.quit()
        reply = f"{response.code} {response.message}"
        return outcomes + [
            Attempt(e, "sent", reply, "2.0.0", host, relayed_without_dsn=not dsn) for e in accepted
        ]

    def _sign(self, raw: bytes, mail_from: str) -> bytes:
        domains = self._signer.domains()
        sender_domain = mail_from.rpartition("@")[2] if mail_from else ""
        domain = sender_domain if sender_domain in domains else None
        if domain is None:
            domain = next((d for d in domains if self._hostname.endswith(d)), None)
        if domain is None:
            return raw
        return self._signer.sign(raw, domain) + raw

    # --- after the attempt ----------------------------------------------------------------------

    async def _notify(self, outcomes: Sequence[Attempt]) -> None:
        """DSNs to the authors: failures, and 'relayed' when success notices cannot come."""
        by_message: dict[tuple[int, str, str], list[Attempt]] = {}
        for o in outcomes:
            notify = _notify_of(o.entry)
            wanted = (o.state == "failed" and notify.wants("FAILURE")) or (
                o.state == "sent" and o.relayed_without_dsn and notify.wants("SUCCESS")
            )
            if wanted and o.entry.mail_from:
                action = "failed" if o.state == "failed" else "relayed"
                by_message.setdefault((o.entry.blob_id, o.entry.mail_from, action), []).append(o)
        for (blob_id, author, action), items in by_message.items():
            try:
                await self._report(blob_id, author, action, items)
            except Exception:  # one DSN's trouble must not make the batch's mail go again
                log.exception("the DSN for %s to %s could not be sent", items[0].entry.queue_id,
                              author)  # fmt: skip

    async def _report(self, blob_id: int, author: str, action: str, items: list[Attempt]) -> None:
        original = await self._store.blob_bytes(blob_id)
        now = dt.datetime.now(dt.UTC)
        statuses = [
            RecipientStatus(
                o.entry.rcpt_to,
                action,
                o.status or "5.0.0",
                diagnostic=f"smtp; {o.reply}" if o.reply else None,
                original_recipient=o.entry.orcpt,
                remote_mta=o.remote,
            )
            for o in items
        ]
        first = items[0].entry
        report = build_dsn(
            reporting_mta=self._hostname, to=author, original=original, statuses=statuses,
            ret=first.ret, envid=first.envid,
            arrival=dt.datetime.fromtimestamp(first.created, dt.UTC), now=now,
        )  # fmt: skip
        await self._reports.send(author, report)


def _outcome(attempt: Attempt) -> Outcome:
    if attempt.state == "sent":
        return Done(attempt.reply)
    if attempt.state == "failed":
        return Failed(attempt.reply)
    return Retry(attempt.reply)


def _expire(outcomes: list[Attempt], now: int) -> list[Attempt]:
    """A retry past the entry's expiry is a failure (status 4.4.7, RFC 3463)."""
    return [
        Attempt(o.entry, "failed", f"expired, last error: {o.reply}", "4.4.7", o.remote)
        if o.state == "retry" and now >= o.entry.expires
        else o
        for o in outcomes
    ]


def _refused(entry: QueueEntry, code: int, message: str, host: str) -> Attempt:
    state = "failed" if code >= 500 else "retry"
    enhanced = message.split(" ", 1)[0] if message[:1].isdigit() and "." in message[:6] else ""
    status = enhanced or ("5.0.0" if code >= 500 else "4.0.0")
    return Attempt(entry, state, f"{code} {message}", status, host)


def _invalid_addresses(entries: list[QueueEntry]) -> list[Attempt]:
    """Never hand an unchecked address to the SMTP client (no CR/LF injection): the rows
    whose addresses do not parse fail for good (the others go on)."""
    bad = []
    for entry in entries:
        try:
            if entry.mail_from:
                parse_address(entry.mail_from)
            parse_address(entry.rcpt_to)
        except InvalidAddress as exc:
            bad.append(Attempt(entry, "failed", f"invalid address: {exc.reason}", "5.1.3"))
    return bad


def _notify_of(entry: QueueEntry) -> RcptDSN:
    if entry.notify is None:
        return RcptDSN()
    return parse_rcpt_param(RcptDSN(), "NOTIFY", entry.notify)


def _rcpt_options(entry: QueueEntry) -> list[str]:
    dsn = _notify_of(entry)
    if entry.orcpt:
        dsn = RcptDSN(dsn.notify, dsn.notify_given, entry.orcpt)
    return rcpt_params_text(dsn)


def mx_route(domain: str) -> tuple[str, int] | None:
    """The lowest-preference MX of `domain` on port 25 (dnspython)."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(domain, "MX", lifetime=10)
    except dns.exception.DNSException:
        return None
    records = sorted(answer, key=lambda r: r.preference)
    return (str(records[0].exchange).rstrip("."), 25) if records else None


def _tls_established(tls: ssl.SSLContext, host: str, ssl_object: ssl.SSLObject | None) -> None:
    """Log the TLS session with `host`, and keep it for the next connection: the server
    has spoken since the handshake, so its session ticket is in (TLS 1.3). A resumed
    session whose certificate has expired since is forgotten, and the message waits
    for a full handshake (which checks the certificate again)."""
    if ssl_object is None:
        return
    how = "session resumed" if ssl_object.session_reused else "full handshake"
    log.info("relay: TLS with %s, %s, %s", host, ssl_object.version(), how)
    remember_session(tls, host, ssl_object)
    if peer_certificate(ssl_object) is None:
        raise _Temporary(f"{host}: its certificate is outside its validity dates")
