"""`mss cert issue|revoke`: development certificates from the dev PKI."""

from __future__ import annotations

import argparse
from pathlib import Path

from mss.admin.cert import issue_certificate, revoke_certificate
from mss.cli.base import Commands, Parser, group, settings

CERT_FIELDS = ("rpps", "adeli", "family", "given", "address", "hostname")


def register(commands: Commands, common: Parser) -> None:
    cert = group(commands, "cert", "development certificates")
    issue = cert.add_parser("issue", help="issue a certificate from the dev PKI").add_subparsers(
        dest="kind", required=True, parser_class=Parser
    )
    _add_issue(issue, common)
    revoke = cert.add_parser(
        "revoke", parents=[common], help="revoke a certificate, rewrite the CRL"
    )
    revoke.add_argument("cert", type=Path)
    revoke.set_defaults(handler=_cert_revoke)


def _add_issue(issue: Commands, common: Parser) -> None:
    pro = issue.add_parser("professional", parents=[common], help="a professional's certificate")
    ident = pro.add_mutually_exclusive_group(required=True)
    ident.add_argument("--rpps")
    ident.add_argument("--adeli")
    pro.add_argument("--family", default="DEV")
    pro.add_argument("--given", default="Professionnel")
    pro.set_defaults(handler=_cert_issue)
    appl = issue.add_parser(
        "applicative", parents=[common], help="an applicative mailbox's certificate"
    )
    appl.add_argument("address")
    appl.set_defaults(handler=_cert_issue)
    oper = issue.add_parser("operator", parents=[common], help="another operator's certificate")
    oper.add_argument("--hostname", required=True)
    oper.add_argument("--domain", action="append", required=True)
    oper.set_defaults(handler=_cert_issue)


def _cert_issue(args: argparse.Namespace) -> int:
    values = {
        name: getattr(args, name) for name in CERT_FIELDS if getattr(args, name, None) is not None
    }
    if args.kind == "operator":
        values["domains"] = ",".join(args.domain or [])
    cert, key = issue_certificate(settings(args), args.kind, values)
    print(f"certificate {cert}\nkey {key}")
    return 0


def _cert_revoke(args: argparse.Namespace) -> int:
    serial = revoke_certificate(settings(args), args.cert)
    print(f"revoked serial {serial:x}; CRL rewritten")
    return 0
