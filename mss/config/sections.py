"""The sections of the settings: one frozen, keyword-only dataclass each, with the
checks of its values (`validate` raises `ValueError(key, problem)`; the loader turns
it into a `ConfigError` naming the key)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mss.core.address import PATIENT_DOMAIN, is_valid_domain
from mss.core.digits import ascii_digits

EVENT_LOOPS = ("uvloop", "asyncio")


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    data_dir: Path = Path(".")
    hostname: str = "mail.pro.mssante.test"
    operator_name: str = "Opérateur MSSanté de développement"
    # Server processes sharing the listening sockets: 0 = one per CPU core (at most 8).
    workers: int = 0
    # Processes for CPU-heavy checks (DKIM verification) of a single server process:
    # -1 = one per core beyond the first (none when several workers share the cores).
    cpu_workers: int = -1
    # Load balancers (CIDRs) that open connections for clients and say who they are in a
    # PROXY protocol header (HAProxy's send-proxy-v2): they must send it, nobody else may.
    proxy_from: tuple[str, ...] = ()
    # The event loop of the server processes: "uvloop" (libuv, compiled) or "asyncio"
    # (the standard library's, in Python): the same behaviour, less CPU per request.
    event_loop: str = "uvloop"

    def validate(self) -> None:
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError("event_loop", "must be uvloop or asyncio")
        if not is_valid_domain(self.hostname) and self.hostname != "localhost":
            raise ValueError("hostname", f"{self.hostname!r} is not a host name")
        for cidr in self.proxy_from:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError("proxy_from", f"{cidr!r} is not an address or a CIDR") from None
        if not 0 <= self.workers <= 64:
            raise ValueError("workers", "must be between 0 (one per core) and 64")

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    # "text": one line per event for a person; "json": one JSON object per line (time,
    # level, logger, message, connection id) for a log collector.
    format: str = "text"

    def validate(self) -> None:
        if self.format not in ("text", "json"):
            raise ValueError("format", "must be text or json")


@dataclass(frozen=True, kw_only=True)
class DomainSettings:
    professional: tuple[str, ...] = ("pro.mssante.test",)
    patient: str = PATIENT_DOMAIN
    # The whole system in one box by default; False relays patient mail instead.
    host_patient_domain: bool = True

    def validate(self) -> None:
        for domain in (*self.professional, self.patient):
            if not is_valid_domain(domain):
                key = "patient" if domain == self.patient else "professional"
                raise ValueError(key, f"{domain!r} is not a domain name")
        if not self.professional:
            raise ValueError("professional", "at least one professional domain is needed")

    @property
    def local(self) -> tuple[str, ...]:
        """Every domain whose mailboxes live here."""
        return (*self.professional, self.patient) if self.host_patient_domain else self.professional


@dataclass(frozen=True, kw_only=True)
class ListenSettings:
    host: str = "127.0.0.1"
    mx: int = 2525
    submission: int = 2587
    submissions: int = 2465
    imap: int = 2143
    imaps: int = 2993
    https: int = 8443

    def validate(self) -> None:
        _check_ports(self, ("mx", "submission", "submissions", "imap", "imaps", "https"))


def _check_ports(section: object, names: tuple[str, ...]) -> None:
    for name in names:
        port = getattr(section, name)
        if not 0 <= port <= 65535:
            raise ValueError(name, f"port {port} is out of range 0-65535")


@dataclass(frozen=True, kw_only=True)
class ClientSettings:
    # What mail clients are told (autoconfig, SRV records printed by `mss init`): behind
    # a proxy or a NAT, the host and ports they reach. ""/0: server.hostname, the ports
    # listened on.
    hostname: str = ""
    imap: int = 0
    imaps: int = 0
    submission: int = 0
    submissions: int = 0

    def validate(self) -> None:
        if self.hostname and not is_valid_domain(self.hostname):
            raise ValueError("hostname", f"{self.hostname!r} is not a host name")
        _check_ports(self, ("imap", "imaps", "submission", "submissions"))


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    url: str = "sqlite:///mss.db"
    key_file: Path = Path("keys/blob.keys")
    # Group commit: at most this many writes share one transaction.
    batch_max: int = 512
    reader_threads: int = 4

    def validate(self) -> None:
        if not self.url.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+")):
            raise ValueError("url", "must be a sqlite:/// or postgresql:// URL")
        if not 1 <= self.batch_max <= 100_000:
            raise ValueError("batch_max", "must be between 1 and 100000")
        if not 1 <= self.reader_threads <= 64:
            raise ValueError("reader_threads", "must be between 1 and 64")


@dataclass(frozen=True, kw_only=True)
class BlobSettings:
    """`[blobs]`: where message and document bodies go. "database" (the default) keeps
    them in the `blob` table; "s3" puts them in any S3-compatible object store, still
    encrypted with the key ring. The credentials may come from the environment
    (`MSS_BLOBS_ACCESS_KEY_ID`, `MSS_BLOBS_SECRET_ACCESS_KEY`); they are never logged."""

    store: str = "database"
    endpoint: str = ""  # e.g. "https://s3.example.net"; empty: the provider's default
    bucket: str = ""
    region: str = "us-east-1"
    prefix: str = "blobs/"
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    timeout: int = 10  # seconds for one upload or download; then 451, nothing lost
    # An object younger than this is never collected (uploads whose transaction is in
    # flight); a body is re-uploaded when its transaction starts later than a quarter of it.
    gc_grace: int = 3600

    def validate(self) -> None:
        if self.store not in ("database", "s3"):
            raise ValueError("store", 'must be "database" or "s3"')
        if self.store == "s3" and not self.bucket:
            raise ValueError("bucket", 'is needed when store = "s3"')
        if self.endpoint and not self.endpoint.startswith(("https://", "http://")):
            raise ValueError("endpoint", "must be an http:// or https:// URL")
        if not 1 <= self.timeout <= 600:
            raise ValueError("timeout", "must be between 1 and 600 seconds")
        if not 60 <= self.gc_grace <= 30 * 86400:
            raise ValueError("gc_grace", "must be between 60 seconds and 30 days")


@dataclass(frozen=True, kw_only=True)
class TLSSettings:
    cert: Path = Path("certs/server.crt")
    key: Path = Path("certs/server.key")
    # Trust anchors for client certificates (IGC-Santé in production).
    ca: Path = Path("certs/ca.crt")
    crl: Path = Path("certs/crl.pem")
    min_version: str = "TLSv1.2"

    def validate(self) -> None:
        if self.min_version not in ("TLSv1.2", "TLSv1.3"):
            raise ValueError("min_version", "must be TLSv1.2 or TLSv1.3")


@dataclass(frozen=True, kw_only=True)
class DKIMSettings:
    keys_dir: Path = Path("dkim")
    selector_rsa: str = "mss-rsa"
    selector_ed25519: str = "mss-ed"
    # Public keys of peers known without DNS: lines "<selector>._domainkey.<domain> <TXT>".
    records_file: Path = Path("dkim/peer-keys.txt")
    # What to do with mail arriving on the MX whose DKIM does not verify:
    # "accept" (record the result in Authentication-Results) or "reject".
    on_verify_failure: str = "accept"

    def validate(self) -> None:
        if self.on_verify_failure not in ("accept", "reject"):
            raise ValueError("on_verify_failure", "must be accept or reject")


@dataclass(frozen=True, kw_only=True)
class SMTPSettings:
    max_recipients: int = 100
    max_line_length: int = 998  # RFC 5322 §2.1.1, CRLF excluded
    max_header_size: int = 64 * 1024
    idle_timeout: int = 300  # RFC 5321 §4.5.3.2.7: at least 5 minutes between commands
    data_timeout: int = 600  # the whole of DATA

    def validate(self) -> None:
        if not 1 <= self.max_recipients <= 10000:
            raise ValueError("max_recipients", "must be between 1 and 10000")
        if self.max_line_length < 78:
            raise ValueError("max_line_length", "must be at least 78")
        for name in ("idle_timeout", "data_timeout"):
            if getattr(self, name) < 1:
                raise ValueError(name, "must be at least 1 second")


@dataclass(frozen=True, kw_only=True)
class RelaySettings:
    # Where to send mail for other operators' domains: domain = "host:port".
    routes: dict[str, str] = field(default_factory=dict)
    retry_base: int = 60  # first retry after this many seconds, then doubling
    retry_max: int = 3600
    expire_days: int = 5
    connect_timeout: int = 30
    concurrency: int = 8

    def validate(self) -> None:
        for domain, target in self.routes.items():
            host, sep, port = target.rpartition(":")
            if not is_valid_domain(domain) or not sep or not host or not ascii_digits(port):
                raise ValueError("routes", f"{domain} = {target!r}: expected domain = host:port")
        if self.retry_base < 1 or self.retry_max < self.retry_base:
            raise ValueError("retry_base", "need 1 <= retry_base <= retry_max")
        if self.expire_days < 1:
            raise ValueError("expire_days", "must be at least 1")

    def route(self, domain: str) -> tuple[str, int] | None:
        target = self.routes.get(domain)
        if target is None:
            return None
        host, _, port = target.rpartition(":")
        return host, int(port)


@dataclass(frozen=True, kw_only=True)
class DNSSettings:
    # Use the system resolver for MX routes and DKIM keys (off in development).
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class OAuthSettings:
    # Bearer tokens (XOAUTH2, OAUTHBEARER) are accepted only when an issuer is set.
    issuer: str = ""
    audience: str = ""
    jwks_file: str = ""
    jwks_url: str = ""
    address_claim: str = "email"
    national_id_claim: str = "preferred_username"

    def validate(self) -> None:
        if self.issuer and bool(self.jwks_file) == bool(self.jwks_url):
            raise ValueError("jwks_file", "with an issuer, set exactly one of jwks_file, jwks_url")


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    max_message_size: int = 25 * 1024 * 1024  # DOMAIN.md §3: 25 MB
    # Per account (no national figure: ours); 0 = no limit. A mailbox may go past its
    # storage by the messages the MX accepted before it was full (store/quotas.py).
    max_folders: int = 1000
    max_messages: int = 1_000_000
    max_storage: int = 10 * 1024**3  # bytes of messages (each copy counted)
    # Documents deposited into the DMP from one mail (no ANS figure: ours); 0 = no limit.
    max_documents_per_mail: int = 50

    def validate(self) -> None:
        if self.max_message_size < 1024:
            raise ValueError("max_message_size", "must be at least 1024 bytes")
        for name in ("max_folders", "max_messages", "max_storage", "max_documents_per_mail"):
            if getattr(self, name) < 0:
                raise ValueError(name, "must be 0 (no limit) or more")
        if 0 < self.max_folders < 6:  # the mailboxes every account is given (INBOX, Sent…)
            raise ValueError("max_folders", "must be 0 (no limit) or at least 6")


@dataclass(frozen=True, kw_only=True)
class DMPSettings:
    # The lifetime of a professional's authorisation to consult (not published: ours).
    authorization_days: int = 365
    # The "matrice d'habilitation" (TOML); empty: the default shipped with mss.
    habilitations: str = ""

    def validate(self) -> None:
        if self.authorization_days < 1:
            raise ValueError("authorization_days", "must be 1 or more")


@dataclass(frozen=True, kw_only=True)
class PolicySettings:
    # Patients send through their space; SMTP login is for tests and special set-ups.
    patient_smtp_login: bool = False
    patient_imap_login: bool = False
    # No reply window is published (DOMAIN.md §2): 0 means none.
    reply_window_days: int = 0
    # Mailboxes of other operators allowed to write to patients before the annuaire
    # publishes them (those of the annuaire are allowed anyway).
    professionals: tuple[str, ...] = ()
    # From the patient space, a new message (not a reply) to a professional who already
    # wrote and has not ended the exchange, as Mon espace santé allows; false: replies only.
    new_message_to_professionals: bool = True

    def validate(self) -> None:
        if self.reply_window_days < 0:
            raise ValueError("reply_window_days", "must be 0 (no window) or more")


@dataclass(frozen=True, kw_only=True)
class SpaceSettings:
    """The patient space (`/espace/`): its sessions and what patients may send."""

    idle_timeout: int = 1800  # seconds without a request before the session ends
    absolute_timeout: int = 43200  # seconds after login, whatever the use
    code_minutes: int = 10  # life of a one-time code (activation, login, reset)
    attachment_max: int = 5 * 1024 * 1024  # each attachment a patient sends

    def validate(self) -> None:
        if not 60 <= self.idle_timeout <= self.absolute_timeout:
            raise ValueError("idle_timeout", "at least 60 and at most absolute_timeout")
        if not 1 <= self.code_minutes <= 60 or self.attachment_max < 1:
            raise ValueError("code_minutes", "code_minutes 1 to 60, attachment_max >= 1")


@dataclass(frozen=True, kw_only=True)
class NotifySettings:
    """Patients' notices (DOMAIN.md §8): the channels and the rules."""

    # The link every notice carries: the patient space.
    space_url: str = "https://localhost:8443/espace/"
    service_name: str = "Mon espace santé"
    # E-mail through the operator's smarthost ("" : no e-mail channel).
    smarthost: str = ""  # host:port
    smarthost_tls: str = "starttls"  # starttls | tls | none (none: loopback only)
    smarthost_user: str = ""
    smarthost_password_file: str = ""
    smarthost_ca: str = ""  # trust anchors for its certificate ("": the system's)
    sender: str = ""  # From ("": notifications@<server.hostname>)
    return_path: str = ""  # where DSNs come back ("": bounces@<server.hostname>)
    # SMS through an HTTP gateway: "" (none), "http" (generic) or "ovh".
    sms_provider: str = ""
    sms_url: str = ""  # generic: the URL; ovh: the API's base URL
    sms_sender: str = ""
    sms_headers: dict[str, str] = field(default_factory=dict)  # generic provider
    sms_body_template: str = ""  # generic: ${to} ${text} ${id} ${sender}
    sms_content_type: str = "application/json"
    sms_service: str = ""  # ovh: the SMS service name (sms-xx11111-1)
    sms_application_key: str = ""  # ovh
    sms_consumer_key: str = ""  # ovh
    sms_secret_file: str = ""  # ovh: the application secret
    sms_quiet_hours: str = "21:00-08:00"  # deferred, not dropped ("": none)
    timezone: str = "Europe/Paris"
    # Web Push (VAPID, RFC 8292): the key `mss init` made.
    vapid_private_key_file: str = "keys/vapid.key"  # its public key beside it (.pub)
    vapid_subject: str = ""  # mailto: of the operator ("": mailto:postmaster@<hostname>)
    # Push services on private addresses (loopback, LAN): tests only, never in production
    # (a patient's endpoint could make the server reach inside its network).
    push_private_networks: bool = False
    # What patients expect: one notice for a burst, a daily ceiling.
    coalesce_minutes: int = 5
    daily_limit: int = 20
    timeout: int = 30  # seconds, for every channel

    def validate(self) -> None:
        if self.smarthost:
            host, sep, port = self.smarthost.rpartition(":")
            if not sep or not host or not ascii_digits(port) or not 0 < int(port) < 65536:
                raise ValueError("smarthost", f"{self.smarthost!r}: expected host:port")
            if self.smarthost_tls not in ("starttls", "tls", "none"):
                raise ValueError("smarthost_tls", "one of starttls, tls, none")
            if self.smarthost_tls == "none" and not _loopback(host):
                raise ValueError("smarthost_tls", "none is accepted for a loopback host only")
        if self.sms_provider not in ("", "http", "ovh"):
            raise ValueError("sms_provider", 'one of "" (none), http, ovh')
        if self.sms_provider and not self.sms_url:
            raise ValueError("sms_url", f"needed by the {self.sms_provider} SMS provider")
        _check_hours(self.sms_quiet_hours)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("timezone", f"{self.timezone!r} is not a known time zone") from None
        if self.coalesce_minutes < 0 or self.daily_limit < 1 or self.timeout < 1:
            raise ValueError("daily_limit", "coalesce_minutes >= 0, daily_limit and timeout >= 1")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_hours(text: str) -> None:
    if not text:
        return
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError
        for part in (start, end):
            hours, minutes = part.strip().split(":")
            if not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
                raise ValueError
    except ValueError:
        raise ValueError("sms_quiet_hours", f"{text!r}: expected HH:MM-HH:MM") from None
