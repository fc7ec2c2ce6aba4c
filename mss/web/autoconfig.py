"""Mail clients configure themselves: Thunderbird's autoconfig file, served where
Thunderbird looks for it (https://wiki.mozilla.org/Thunderbird:Autoconfiguration):
`/.well-known/autoconfig/mail/config-v1.1.xml` on the domain's host, and
`/mail/config-v1.1.xml?emailaddress=…` on `autoconfig.<domain>`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from mss.core.clients import MailService, autoconfig_xml

XML = "application/xml"
PATHS = ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml")
EXAMPLE = """<?xml version='1.0' encoding='utf-8'?>
<clientConfig version="1.1">
  <emailProvider id="pro.mssante.test">
    <domain>pro.mssante.test</domain>
    <incomingServer type="imap">
      <hostname>mail.pro.mssante.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">…</outgoingServer>
  </emailProvider>
</clientConfig>"""
NOT_HOSTED = {
    "error": "NotFound",
    "detail": "aucune boîte de ce domaine ici (no mailbox of this domain here)",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The `clientConfig` (version 1.1): IMAP (SSL, STARTTLS) and submission "
        "(SSL, STARTTLS), user name the e-mail address, password (and OAuth2 when bearer "
        "tokens are accepted)",
        "content": {XML: {"example": EXAMPLE}},
    },
    404: {
        "description": "No mailbox of the address's domain is hosted here",
        "content": {"application/json": {"example": NOT_HOSTED}},
    },
    422: {"description": "A parameter that cannot be read"},
}


@dataclass(frozen=True)
class ClientSetup:
    """What the autoconfig says, built by `app` from the settings and the served ports."""

    service: MailService
    domains: Sequence[str]


def router(setup: ClientSetup) -> APIRouter:
    api = APIRouter(tags=["clients"])
    domains = [domain.lower() for domain in setup.domains]

    async def autoconfig(
        emailaddress: Annotated[
            str | None, Query(description="the address being set up", examples=["a@b.test"])
        ] = None,
    ) -> Response:
        """Thunderbird's autoconfig file for the mailboxes of this server's domains."""
        domain = (emailaddress or "").rpartition("@")[2].strip().lower() or domains[0]
        if domain not in domains:
            return JSONResponse(NOT_HOSTED, 404)
        return Response(autoconfig_xml(setup.service, domains, domain), media_type=XML)

    for path in PATHS:
        api.add_api_route(
            path, autoconfig, methods=["GET"], responses=RESPONSES, response_class=Response,
            summary="Thunderbird autoconfig", operation_id=f"autoconfig_{PATHS.index(path)}",
        )  # fmt: skip
    return api
