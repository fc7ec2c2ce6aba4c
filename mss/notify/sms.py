"""The SMS channel: notices sent through an HTTP gateway.

Two providers share one `Channel` shape (`name = ChannelName.SMS`):

- `HttpSmsChannel`, a generic gateway: a URL, headers, and a JSON or form body
  template with `${to}`, `${text}`, `${id}`, `${sender}` placeholders, each value
  JSON-escaped or form-encoded as the content type requires;
- `OvhSmsChannel`, OVHcloud's SMS API: `POST {base_url}/sms/{serviceName}/jobs`,
  signed with the application key, application secret and consumer key
  (`X-Ovh-Signature` = "$1$" + SHA1 hex of AS+CK+METHOD+URL+BODY+TIMESTAMP), the
  notice's idempotency id in the job's `tag`. Documentation, OVHcloud's guides
  (github.com/ovh/docs, pages/web_cloud/messaging/sms/): "Sending SMS messages with
  the OVHcloud API in Java" (envoyer_des_sms_avec_lapi_ovh_en_java/guide.en-gb.md)
  for the call, its signature and its answer `{"ids": [...], "invalidReceivers": [...],
  "validReceivers": [...], "totalCreditsRemoved": n}`; "API SMS Cookbook"
  (api_sms_cookbook/guide.fr-fr.md) for the job's parameters (tag, noStopClause,
  sender, senderForResponse); "Envoyer des SMS depuis une URL - http2sms" for the
  20-character tag; the API console https://eu.api.ovh.com/console/#/sms/{serviceName}/jobs#POST
  (schema https://eu.api.ovh.com/1.0/sms.json) for `coding`: 7bit unless told 8bit
  (UCS-2), so the coding is always sent.

What every notice goes through before the gateway: its destination normalised to
E.164 (`mss.core.phone`; a number that cannot be is a permanent failure: it is wrong
for every attempt), its text capped at `MAX_SEGMENTS` SMS with the link kept whole at
the end (`mss.core.gsm7`). The gateway's answer decides the outcome: 2xx → sent (the
provider's message id returned, "" if none); 400/413/422 → permanent (this SMS will
never be taken: fall back to another channel); 401/403 → temporary, "check the SMS
gateway credentials"; 429, 5xx, time-outs and connection errors → temporary. Reasons
and logs mask the number (last two digits only) and never carry the text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mss.core.gsm7 import LinkTooLong, fit, is_gsm7
from mss.core.phone import InvalidPhone, mask_phone, to_e164
from mss.notify.base import ChannelError, ChannelName, Notice

log = logging.getLogger(__name__)

MAX_SEGMENTS = 3  # a notice is short: more means a template went wrong
CREDENTIALS_HINT = "check the SMS gateway credentials"
PERMANENT_STATUSES = frozenset({400, 413, 422})  # this request will never be taken
CREDENTIAL_STATUSES = frozenset({401, 403})
OK_STATUSES = range(200, 300)
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SmsRequest:
    """One call to the gateway, fully built (the signed bytes are the sent bytes)."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


class _HttpGateway:
    """What both providers share: the checks before the call, the call, the outcome."""

    name = ChannelName.SMS

    def __init__(
        self, *, timeout: float, ok_statuses: Container[int], client: httpx.AsyncClient | None
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._timeout = timeout
        self._ok = ok_statuses
        self._client = client
        self._owns_client = client is None

    async def send(self, notice: Notice) -> str:
        to = _e164(notice.destination)
        request = await self._request(notice, to, _sms_text(notice))
        response = await self._exchange(request, to)
        if response.status_code not in self._ok:
            raise self._refusal(response, to)
        provider_id = self._accepted(response, to)
        log.debug("SMS to %s taken by the gateway (id %r)", mask_phone(to), provider_id)
        return provider_id

    async def aclose(self) -> None:
        """Close the HTTP client this channel made (not one it was given)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _request(self, notice: Notice, to: str, text: str) -> SmsRequest:
        raise NotImplementedError

    def _accepted(self, response: httpx.Response, to: str) -> str:
        return message_id(_json(response), ("id", "message_id", "messageId", "ids"))

    def _refusal(self, response: httpx.Response, to: str) -> ChannelError:
        return refusal(response.status_code, to)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made on first use, inside the running loop
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def _exchange(self, request: SmsRequest, to: str) -> httpx.Response:
        """The call; a foreign error becomes a temporary `ChannelError`."""
        try:
            return await self._http().request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            reason = f"the SMS gateway did not answer within {self._timeout:g} s"
            raise ChannelError(f"{reason} (to {mask_phone(to)})", permanent=False) from exc
        except httpx.HTTPError as exc:
            reason = f"cannot reach the SMS gateway: {exc.__class__.__name__}: {exc}"
            raise ChannelError(f"{reason} (to {mask_phone(to)})", permanent=False) from exc


def _e164(destination: str) -> str:
    try:
        return to_e164(destination)
    except InvalidPhone as exc:
        raise ChannelError(str(exc), permanent=True) from exc


def _sms_text(notice: Notice) -> str:
    try:
        return fit(notice.text, notice.link, MAX_SEGMENTS)
    except LinkTooLong as exc:
        reason = f"the notice's link does not fit in an SMS: {exc}"
        raise ChannelError(reason, permanent=True) from exc


def refusal(status: int, to: str) -> ChannelError:
    """What a non-2xx status means for this notice (see the module docstring)."""
    masked = mask_phone(to)
    if status in CREDENTIAL_STATUSES:
        reason = f"the SMS gateway refused our credentials (HTTP {status}): {CREDENTIALS_HINT}"
        return ChannelError(f"{reason} (to {masked})", permanent=False)
    if status in PERMANENT_STATUSES:
        reason = f"the SMS gateway refused the SMS to {masked} (HTTP {status})"
        return ChannelError(reason, permanent=True)
    if status == 429:
        reason = "the SMS gateway limits our rate"
    elif status >= 500:
        reason = "the SMS gateway failed"
    else:
        reason = "unexpected answer of the SMS gateway"
    return ChannelError(f"{reason} (HTTP {status}; to {masked})", permanent=False)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # not JSON, or not UTF-8
        return None


def message_id(answer: Any, fields: tuple[str, ...]) -> str:
    """The provider's id of the SMS in a JSON answer: the first of `fields` present
    (the first element of a list), "" if none."""
    if not isinstance(answer, dict):
        return ""
    for name in fields:
        value = answer.get(name)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return ""


# ---- the generic gateway -------------------------------------------------------------

PLACEHOLDERS = ("to", "text", "id", "sender")
_PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")
JSON_TYPE, FORM_TYPE = "json", "form"


def body_kind(content_type: str) -> str:
    """JSON (`application/json`, `…+json`) or form (`application/x-www-form-urlencoded`)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return JSON_TYPE
    if media == "application/x-www-form-urlencoded":
        return FORM_TYPE
    raise ValueError(f"content_type {content_type!r}: a JSON or form content type is needed")


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]  # inside the template's quotes


def _form_escape(value: str) -> str:
    return urllib.parse.quote_plus(value, safe="")


def render(template: str, values: Mapping[str, str], kind: str) -> str:
    """The template with each `${name}` replaced by its escaped value."""
    escape = _json_escape if kind == JSON_TYPE else _form_escape
    return _PLACEHOLDER_RE.sub(lambda m: escape(values[m.group(1)]), template)


def check_template(template: str, kind: str) -> None:
    """Refuse a template that names an unknown placeholder, lacks `${to}` or `${text}`,
    or (JSON) is not JSON once rendered (a placeholder outside its quotes)."""
    names = set(_PLACEHOLDER_RE.findall(template))
    if unknown := sorted(names - set(PLACEHOLDERS)):
        raise ValueError(f"body_template: unknown placeholders {unknown}; known {PLACEHOLDERS}")
    if missing := sorted({"to", "text"} - names):
        raise ValueError(f"body_template: ${{{missing[0]}}} is missing")
    if kind == JSON_TYPE:
        sample = dict.fromkeys(PLACEHOLDERS, 'a "quoted" \\ value')
        try:
            json.loads(render(template, sample, kind))
        except ValueError as exc:
            raise ValueError(f"body_template is not JSON once rendered: {exc}") from exc


class HttpSmsChannel(_HttpGateway):
    """A configurable HTTP gateway: one request per notice, built from a template."""

    def __init__(
        self,
        *,
        url: str,
        body_template: str,
        content_type: str = "application/json",
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        sender: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        ok_statuses: Container[int] = OK_STATUSES,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(timeout=timeout, ok_statuses=ok_statuses, client=client)
        self._url = _http_url(url)
        self._kind = body_kind(content_type)
        check_template(body_template, self._kind)
        if method.upper() not in ("POST", "PUT"):
            raise ValueError(f"method {method!r}: POST or PUT (the notice goes in the body)")
        self._method = method.upper()
        self._template = body_template
        given = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        self._headers = {**given, "Content-Type": content_type}
        self._sender = sender

    def __repr__(self) -> str:  # headers may carry a token: never shown
        return f"HttpSmsChannel(url={self._url!r}, headers=<{len(self._headers)} hidden>)"

    async def _request(self, notice: Notice, to: str, text: str) -> SmsRequest:
        values = {"to": to, "text": text, "id": notice.id, "sender": self._sender}
        body = render(self._template, values, self._kind)
        return SmsRequest(self._method, self._url, dict(self._headers), body.encode())


def _http_url(url: str) -> str:
    """An http(s) URL without placeholders (a URL is logged: no number, no text in it)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"url {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"url {url!r}: an http or https URL is needed")
    if "${" in url or "$%7B" in url:
        raise ValueError(f"url {url!r}: placeholders go in the body, never in the URL")
    return url


# ---- OVHcloud -------------------------------------------------------------------------

OVH_EU = "https://eu.api.ovh.com/1.0"
OVH_TAG_MAX = 20  # "une chaîne de maximum 20 caractères" (OVHcloud http2sms guide)
# errorCode of an OVHcloud API refusal that names our keys (python-ovh's client.py maps
# these, all HTTP 403), plus INVALID_SIGNATURE (a wrong secret or clock), so that a
# refused signature never reads as a refused number whatever its status
OVH_CREDENTIAL_ERRORS = frozenset(
    {"INVALID_KEY", "INVALID_CREDENTIAL", "NOT_CREDENTIAL", "NOT_GRANTED_CALL", "FORBIDDEN",
     "INVALID_SIGNATURE"}
)  # fmt: skip


def ovh_signature(
    secret: str, consumer: str, method: str, url: str, body: bytes, timestamp: str
) -> str:
    """X-Ovh-Signature: "$1$" + SHA1 hex of AS+CK+METHOD+QUERY+BODY+TSTAMP joined by
    "+", QUERY the full URL (OVHcloud's guide, "Sending SMS messages … in Java")."""
    head = "+".join([secret, consumer, method, url]).encode()
    plain = head + b"+" + body + b"+" + timestamp.encode()
    return "$1$" + hashlib.sha1(plain).hexdigest()  # noqa: S324 (the API's scheme)


def ovh_tag(notice_id: str) -> str:
    """The job's tag carries the idempotency id: the id itself when it fits in 20
    characters, else a stable 20-character digest of it (the same at every attempt)."""
    if len(notice_id) <= OVH_TAG_MAX:
        return notice_id
    return "mss-" + hashlib.sha256(notice_id.encode()).hexdigest()[: OVH_TAG_MAX - 4]


class OvhSmsChannel(_HttpGateway):
    """OVHcloud's SMS API (`POST /sms/{serviceName}/jobs`), one job per notice."""

    def __init__(
        self,
        *,
        application_key: str,
        application_secret: str,
        consumer_key: str,
        service_name: str,
        sender: str,
        base_url: str = OVH_EU,
        no_stop_clause: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        sync_clock: bool = True,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(timeout=timeout, ok_statuses=OK_STATUSES, client=client)
        required = {
            "application_key": application_key,
            "application_secret": application_secret,
            "consumer_key": consumer_key,
            "service_name": service_name,
            "sender": sender,
        }
        if empty := [key for key, value in required.items() if not value]:
            raise ValueError(f"empty: {', '.join(empty)}")
        self._base = _http_url(base_url.rstrip("/"))
        self._jobs_url = f"{self._base}/sms/{urllib.parse.quote(service_name, safe='')}/jobs"
        self._keys = (application_key, application_secret, consumer_key)
        self._sender = sender
        self._no_stop = no_stop_clause  # notices are not advertising: no "STOP" mention
        self._clock = clock
        self._sync = sync_clock
        self._delta: int | None = None if sync_clock else 0

    def __repr__(self) -> str:
        return f"OvhSmsChannel(url={self._jobs_url!r}, application_key={self._keys[0]!r})"

    def job(self, notice: Notice, to: str, text: str) -> dict[str, object]:
        """The body of `POST /sms/{serviceName}/jobs` for this notice."""
        return {
            "message": text,
            "receivers": [to],
            "sender": self._sender,
            "senderForResponse": False,
            "noStopClause": self._no_stop,
            "tag": ovh_tag(notice.id),
            "coding": "7bit" if is_gsm7(text) else "8bit",
        }

    async def _request(self, notice: Notice, to: str, text: str) -> SmsRequest:
        body = json.dumps(self.job(notice, to, text)).encode()  # ASCII: signed as sent
        timestamp = str(int(self._clock()) + await self._clock_delta(to))
        app, secret, consumer = self._keys
        signature = ovh_signature(secret, consumer, "POST", self._jobs_url, body, timestamp)
        headers = {
            "Content-Type": "application/json",
            "X-Ovh-Application": app,
            "X-Ovh-Consumer": consumer,
            "X-Ovh-Timestamp": timestamp,
            "X-Ovh-Signature": signature,
        }
        return SmsRequest("POST", self._jobs_url, headers, body)

    async def _clock_delta(self, to: str) -> int:
        """The API's clock minus ours, read once from `GET /auth/time` (as OVHcloud's
        own clients do): a signature's timestamp must be the API's time."""
        if self._delta is None:
            ask = SmsRequest("GET", f"{self._base}/auth/time", {}, b"")
            answer = await self._exchange(ask, to)
            try:
                self._delta = int(answer.text.strip()) - int(self._clock())
            except ValueError as exc:
                reason = f"unexpected answer of the OVHcloud API clock (HTTP {answer.status_code})"
                raise ChannelError(reason, permanent=False) from exc
        return self._delta

    def _accepted(self, response: httpx.Response, to: str) -> str:
        report = _json(response)
        if isinstance(report, dict) and report.get("invalidReceivers"):  # ours: the only one
            raise ChannelError(f"OVHcloud refused the number {mask_phone(to)}", permanent=True)
        return message_id(report, ("ids",))

    def _refusal(self, response: httpx.Response, to: str) -> ChannelError:
        answer = _json(response)
        code = answer.get("errorCode") if isinstance(answer, dict) else None
        if code in OVH_CREDENTIAL_ERRORS:
            if self._sync:  # read the API's clock again at the next attempt
                self._delta = None
            reason = f"OVHcloud refused our keys ({code}, HTTP {response.status_code})"
            return ChannelError(f"{reason}: {CREDENTIALS_HINT}", permanent=False)
        return refusal(response.status_code, to)
