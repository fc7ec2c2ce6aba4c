"""The `mss` command. Parses arguments and calls `app`; nothing else.

Every command has `--help`. Bad input ends with one line on stderr
(`mss: error: …`) and a non-zero exit status: 1 for refused input, 2 for a
malformed command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mss import __version__, app
from mss.errors import ConfigError, InputError, MssError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _settings_options() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--config", type=Path, help="config file (default: DATA_DIR/mss.toml)")
    common.add_argument("--data-dir", type=Path, help="installation folder (default: ./mss-data)")
    return common


def _settings(args: argparse.Namespace) -> app.Settings:
    return app.load(args.config, args.data_dir)


# --- handlers ----------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    report = app.init_instance(
        args.data_dir or app.DEFAULT_DATA_DIR, args.domain or [], args.hostname
    )
    if report.created:
        for item in report.created:
            print(f"created {item}")
    else:
        print(f"{report.config.parent} is already initialised; nothing changed")
    print("DKIM records to publish in DNS:")
    for record in report.dns_records:
        print(f"  {record}")
    print(f"run: mss serve --config {report.config}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    return app.serve(_settings(args))


def _pro_add(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    address = app.add_professional(
        _settings(args),
        address=args.address,
        password=password,
        rpps=args.rpps,
        adeli=args.adeli,
        name=args.name,
        bal_type=args.type,
    )
    print(f"added {address}")
    return 0


def _patient_add(args: argparse.Namespace) -> int:
    identity = app.add_patient(
        _settings(args),
        {
            "ins": args.ins,
            "family": args.family,
            "given": args.given,
            "birth_date": args.birth_date,
            "sex": args.sex,
            "birth_place": args.birth_place,
            "email": args.email,
            "phone": args.phone,
            "status": args.status,
            "identity_status": args.identity_status,
            "oid": args.oid,
        },
    )
    mailbox = "with a mailbox" if identity.has_mailbox else "without a mailbox"
    print(f"added patient {identity.ins} ({identity.profile_status}, {mailbox})")
    return 0


def _patient_import(args: argparse.Namespace) -> int:
    report = app.import_patients(_settings(args), args.file)
    if report.ignored_columns:
        print(f"ignored columns: {', '.join(report.ignored_columns)}", file=sys.stderr)
    print(f"imported {report.imported} patients ({report.with_mailbox} with a mailbox)")
    return 0


def _patient_status(args: argparse.Namespace) -> int:
    app.set_patient_status(_settings(args), args.ins, args.status)
    print(f"patient {args.ins.upper()} is now {args.status.lower()}")
    return 0


def _cert_issue(args: argparse.Namespace) -> int:
    names = ("rpps", "adeli", "family", "given", "address", "hostname")
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if args.kind == "operator":
        values["domains"] = ",".join(args.domain or [])
    cert, key = app.issue_certificate(_settings(args), args.kind, values)
    print(f"certificate {cert}\nkey {key}")
    return 0


def _cert_revoke(args: argparse.Namespace) -> int:
    serial = app.revoke_certificate(_settings(args), args.cert)
    print(f"revoked serial {serial:x}; CRL rewritten")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    key_id = app.rotate_blob_key(_settings(args))
    print(f"new blob key {key_id}; older blobs are re-encrypted in the background by `mss serve`")
    return 0


def _trust_import(args: argparse.Namespace) -> int:
    total, added, removed = app.import_whitelist(_settings(args), args.file)
    print(f"whitelist: {total} domains ({added} added, {removed} removed)")
    return 0


def _trust_list(args: argparse.Namespace) -> int:
    for domain in app.whitelist(_settings(args)):
        print(domain)
    return 0


def _queue_list(args: argparse.Namespace) -> int:
    entries = app.queue_entries(_settings(args), everything=args.all)
    if not entries:
        print("the queue is empty")
        return 0
    print(f"{'id':>6}  {'queue id':12}  {'status':7}  {'tries':>5}  {'next attempt':19}  from → to")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.next_attempt))
        print(
            f"{e.id:>6}  {e.queue_id:12}  {e.status:7}  {e.attempts:>5}  {when:19}  "
            f"{e.mail_from or '<>'} → {e.rcpt_to}"
        )
        if e.last_error:
            print(f"{'':>8}last error: {e.last_error}")
    return 0


def _queue_retry(args: argparse.Namespace) -> int:
    count = app.queue_retry(_settings(args), args.ids or None)
    print(f"{count} queued entries due now")
    return 0


def _queue_drop(args: argparse.Namespace) -> int:
    count = app.queue_drop(_settings(args), args.ids)
    print(f"{count} entries dropped")
    return 0


def _annuaire_import(args: argparse.Namespace) -> int:
    progress = _Progress() if sys.stderr.isatty() and not args.json else _LogProgress()
    summaries = app.import_annuaire(_settings(args), args.files, progress)
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], ensure_ascii=False, indent=2))
        return 0
    for s in summaries:
        for reject in s.rejects:
            print(f"rejected {reject}", file=sys.stderr)
        if s.rejected > len(s.rejects):
            print(f"… and {s.rejected - len(s.rejects)} more rejected lines", file=sys.stderr)
        what = "mailboxes" if s.kind == "mssante" else "professionals"
        print(
            f"annuaire {s.kind}: {s.lines} lines -> {s.entries} {what} "
            f"({s.added} added, {s.changed} changed, {s.retired} retired), "
            f"{s.rejected} rejected, {s.seconds:.1f} s"
        )
    return 0


class _Progress:
    """A progress bar on the terminal (stderr)."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def __call__(self, done: int, total: int, lines: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        elapsed = time.monotonic() - self._started
        sys.stderr.write(f"\r[{bar:<30}] {share:4.0%} {lines:>10,} lines {elapsed:6.1f} s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _LogProgress:
    """Without a terminal: a log line every 10 %."""

    def __init__(self) -> None:
        self._step = -1

    def __call__(self, done: int, total: int, lines: int) -> None:
        share = done / total if total else 1.0
        if int(share * 10) != self._step:
            self._step = int(share * 10)
            print(f"import: {share:.0%} ({lines} lines)", file=sys.stderr)


def _annuaire_search(args: argparse.Namespace) -> int:
    query = app.annuaire_lookup.Query(
        mailbox=args.mailbox, national_id=args.rpps or args.national_id, name=args.name,
        family=args.family, given=args.given, profession=tuple(args.profession or ()),
        savoir_faire=tuple(args.savoir_faire or ()), postcode=args.postcode,
        department=args.department, mailbox_type=tuple(args.type or ()),
        structure=args.structure, offset=(args.page - 1) * args.count, limit=args.count,
    )  # fmt: skip
    if query.empty:
        raise InputError("give at least one criterion (see --help)")
    page = app.search_annuaire(_settings(args), query, professionals=args.professionals)
    if args.json:
        print(json.dumps(page.as_dict(), ensure_ascii=False, indent=2))
        return 0
    rows = [_row(item, args.professionals) for item in page.items]
    header = ("NATIONAL ID", "NAME", "PROFESSION", "MAILBOX", "TYPE", "POSTCODE")
    if args.professionals:
        header = ("NATIONAL ID", "NAME", "PROFESSION", "MAILBOXES", "ACTIVITIES", "POSTCODES")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    last = page.offset + len(page.items)
    print(f"{page.total} found; showing {page.offset + 1 if rows else 0}-{last} (page {args.page})")
    return 0


def _row(item: dict[str, Any], professionals: bool) -> tuple[str, ...]:
    name = " ".join(v for v in (item.get("civilite"), item.get("family"), item.get("given")) if v)
    if not professionals and not name:
        name = item["structure"]["raison_sociale"] or ""
        if item.get("service"):
            name += f" ({item['service']})"
    profession = (item.get("profession") or {}).get("label") or ""
    if (item.get("savoir_faire") or {}).get("label"):
        profession += f" / {item['savoir_faire']['label']}"
    if professionals:
        boxes = ", ".join(m["address"] for m in item["mailboxes"])
        places = [a["postal_address"]["postcode"] for a in item["activities"]]
        places += [m["postal_address"]["postcode"] for m in item["mailboxes"]]
        return (item["national_id"] or "", name, profession, boxes, str(len(item["activities"])),
                ", ".join(sorted({p for p in places if p})))  # fmt: skip
    return (item["national_id"] or "", name, profession, item["address"], item["type"],
            item["postal_address"]["postcode"])  # fmt: skip


def _annuaire_status(args: argparse.Namespace) -> int:
    for entry in app.annuaire_status(_settings(args)):
        if not entry["imported_at"]:
            print(f"{entry['kind']}: never imported")
            continue
        print(
            f"{entry['kind']}: {entry['entries']} entries from {entry['source']} "
            f"(imported {entry['imported_at']}: {entry['lines']} lines, {entry['added']} added, "
            f"{entry['changed']} changed, {entry['retired']} retired, {entry['rejected']} rejected)"
        )
    return 0


def _dmp_verify_traces(args: argparse.Namespace) -> int:
    report = app.verify_dmp_traces(_settings(args))
    for problem in report.problems:
        print(problem, file=sys.stderr)
    state = "intact" if report.ok else f"BROKEN ({len(report.problems)} problems)"
    print(f"{report.traces} traces, chain {state}; head {report.head}")
    return 0 if report.ok else 1


def _bench(args: argparse.Namespace) -> int:
    """The benchmarks live in the checkout's `bench/`, outside the product: load them now."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "bench" / "cli.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        bench_cli = importlib.import_module("bench.cli")
    except ImportError as exc:
        raise InputError(
            f"the benchmarks are not available here ({exc}): they live in the bench/ folder "
            "of a checkout; run ./scripts/bench there"
        ) from None
    return int(bench_cli.main(args.arguments, prog="mss bench"))


# --- the parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mss", description="MSSanté operator: mail, patients, DMP, annuaire.")
    parser.add_argument("--version", action="version", version=f"mss {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _settings_options()

    init = commands.add_parser("init", help="create a working installation (idempotent)")
    init.add_argument("--data-dir", type=Path, help="installation folder (default: ./mss-data)")
    init.add_argument("--domain", action="append", help="professional domain hosted (repeatable)")
    init.add_argument("--hostname", help="this server's host name (default: mail.<first domain>)")
    init.set_defaults(handler=_init)

    serve = commands.add_parser(
        "serve", parents=[common], help="run every listener until SIGINT/SIGTERM"
    )
    serve.set_defaults(handler=_serve)

    _add_pro_commands(commands, common)
    _add_patient_commands(commands, common)
    _add_cert_commands(commands, common)
    _add_trust_and_queue_commands(commands, common)
    _add_annuaire_commands(commands, common)
    dmp = commands.add_parser("dmp", help="the DMP (shared medical record)").add_subparsers(
        dest="dmp", required=True, parser_class=_Parser
    )
    verify = dmp.add_parser(
        "verify-traces", parents=[common],
        help="check the hash chain of the traces (exit 1 if a trace was modified or deleted)",
    )  # fmt: skip
    verify.set_defaults(handler=_dmp_verify_traces)

    keys = commands.add_parser("keys", help="blob encryption keys").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    rotate = keys.add_parser("rotate", parents=[common], help="add a new current key")
    rotate.set_defaults(handler=_keys_rotate)

    bench = commands.add_parser(
        "bench", help="benchmarks, from a checkout (print a table, write JSON)", add_help=False
    )
    bench.add_argument("arguments", nargs=argparse.REMAINDER, help="see `mss bench --help`")
    bench.set_defaults(handler=_bench)
    return parser


def _add_pro_commands(commands: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    pro = commands.add_parser("pro", help="professional mailboxes").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    add = pro.add_parser("add", parents=[common], help="create a professional mailbox")
    add.add_argument("address", help="mailbox address on a professional domain of this instance")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ident = add.add_mutually_exclusive_group()
    ident.add_argument("--rpps", help="RPPS number (11 digits); national id 8+RPPS")
    ident.add_argument("--adeli", help="ADELI number (9 characters); national id 0+ADELI")
    add.add_argument("--name", help="display name")
    add.add_argument("--type", default="PER", help="mailbox type: PER (default), ORG, APP, CAB")
    add.set_defaults(handler=_pro_add)


def _add_patient_commands(commands: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    patient = commands.add_parser("patient", help="patients and their mailboxes").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    add = patient.add_parser(
        "add", parents=[common], help="add a patient (mailbox if active and QUAL)"
    )
    add.add_argument("ins", help="matricule INS (15 characters)")
    add.add_argument("--family", required=True, help="birth name")
    add.add_argument("--given", required=True, help="birth first names")
    add.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    add.add_argument("--sex", required=True, help="M or F")
    add.add_argument("--birth-place", help="INSEE code of the birth place")
    add.add_argument("--email")
    add.add_argument("--phone")
    add.add_argument("--status", default="active", help="active (default), closed, opposed")
    add.add_argument("--identity-status", default="QUAL", help="PROV, RECUP, VALI, QUAL (default)")
    add.add_argument("--oid", help="identifier system OID (default: NIR, or NIA if provisional)")
    add.set_defaults(handler=_patient_add)
    imp = patient.add_parser(
        "import", parents=[common], help="import a CSV of patients (all or none)"
    )
    imp.add_argument("file", type=Path, help="CSV with header ins,family,given,birth_date,sex,…")
    imp.set_defaults(handler=_patient_import)
    status = patient.add_parser(
        "status", parents=[common], help="close, oppose or reopen a profile"
    )
    status.add_argument("ins")
    status.add_argument("status", help="active, closed or opposed")
    status.set_defaults(handler=_patient_status)


def _add_trust_and_queue_commands(
    commands: argparse._SubParsersAction[_Parser], common: _Parser
) -> None:
    trust = commands.add_parser("trust", help="the MSSanté trust-space whitelist").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    imp = trust.add_parser(
        "import", parents=[common], help="replace the whitelist from the national XML"
    )
    imp.add_argument("file", type=Path, help="listeblanchemssante.xml")
    imp.set_defaults(handler=_trust_import)
    lst = trust.add_parser("list", parents=[common], help="the whitelisted domains")
    lst.set_defaults(handler=_trust_list)

    queue = commands.add_parser("queue", help="mail waiting to be relayed").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    qlist = queue.add_parser("list", parents=[common], help="queued entries")
    qlist.add_argument("--all", action="store_true", help="also sent, failed and dropped entries")
    qlist.set_defaults(handler=_queue_list)
    retry = queue.add_parser(
        "retry", parents=[common], help="make entries due now (all by default)"
    )
    retry.add_argument("ids", nargs="*", type=int)
    retry.set_defaults(handler=_queue_retry)
    qdrop = queue.add_parser("drop", parents=[common], help="give up entries without a DSN")
    qdrop.add_argument("ids", nargs="+", type=int)
    qdrop.set_defaults(handler=_queue_drop)


def _add_annuaire_commands(commands: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    annuaire = commands.add_parser(
        "annuaire", help="the national directory (Annuaire Santé extractions)"
    ).add_subparsers(dest="annuaire", required=True, parser_class=_Parser)
    imp = annuaire.add_parser(
        "import", parents=[common],
        help="import Extraction_Correspondance_MSSante_* and PS_LibreAcces_Personne_activite_* "
        "files (.txt or .zip); each replaces the previous extraction of its kind",
    )  # fmt: skip
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(handler=_annuaire_import)
    search = annuaire.add_parser(
        "search", parents=[common],
        help="find mailboxes (or --professionals); criteria combine with AND",
    )  # fmt: skip
    search.add_argument("--mailbox", help="a mailbox address (any case)")
    search.add_argument("--rpps", help="an RPPS number (11 digits) or a national id")
    search.add_argument("--national-id", help="a national id (8+RPPS, 0+ADELI) or ADELI number")
    search.add_argument("--name", help="start of a family, given or structure name (any accents)")
    search.add_argument("--family", help="start of the family name")
    search.add_argument("--given", help="start of the given name")
    search.add_argument("--profession", action="append", help="profession code (10 Médecin…)")
    search.add_argument("--savoir-faire", action="append", help="savoir-faire code (SM54…)")
    search.add_argument("--postcode", help="a postcode, or its start")
    search.add_argument("--department", help="a department code (75, 2A, 974…)")
    search.add_argument("--type", action="append", choices=("PER", "ORG", "APP", "CAB"),
                        help="mailbox type (repeatable)")  # fmt: skip
    search.add_argument("--structure", help="a structure id (FINESS, SIRET, technical id)")
    search.add_argument(
        "--professionals", action="store_true",
        help="list professionals (with their mailboxes and activities)",
    )  # fmt: skip
    search.add_argument("--page", type=_positive, default=1, help="page number (1)")
    search.add_argument("--count", type=_positive, default=50, help="entries per page (50)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=_annuaire_search)
    status = annuaire.add_parser("status", parents=[common], help="what was imported, and when")
    status.set_defaults(handler=_annuaire_status)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _add_cert_commands(commands: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    cert = commands.add_parser("cert", help="development certificates").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    issue = cert.add_parser("issue", help="issue a certificate from the dev PKI").add_subparsers(
        dest="kind", required=True, parser_class=_Parser
    )
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
    revoke = cert.add_parser(
        "revoke", parents=[common], help="revoke a certificate, rewrite the CRL"
    )
    revoke.add_argument("cert", type=Path)
    revoke.set_defaults(handler=_cert_revoke)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "bench":  # `mss bench --help`: argparse leaves a leading option out
        args.arguments = [*extra, *args.arguments]
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"mss: configuration error: {_one_line(exc)}", file=sys.stderr)
    except MssError as exc:
        print(f"mss: error: {_one_line(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1
