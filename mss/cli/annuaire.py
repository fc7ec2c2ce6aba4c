"""`mss annuaire import|search|status`: the national directory (Annuaire Santé
extractions)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from mss.admin.annuaire import annuaire_status, import_annuaire, search_annuaire
from mss.annuaire.importer import Summary
from mss.annuaire.lookup import Page, Query
from mss.cli.base import Commands, Parser, group, positive, settings
from mss.errors import InputError

MAILBOX_HEADER = ("NATIONAL ID", "NAME", "PROFESSION", "MAILBOX", "TYPE", "POSTCODE")
PROFESSIONAL_HEADER = ("NATIONAL ID", "NAME", "PROFESSION", "MAILBOXES", "ACTIVITIES", "POSTCODES")


def register(commands: Commands, common: Parser) -> None:
    annuaire = group(
        commands, "annuaire", "the national directory (Annuaire Santé extractions)", "annuaire"
    )
    imp = annuaire.add_parser(
        "import", parents=[common],
        help="import Extraction_Correspondance_MSSante_* and PS_LibreAcces_Personne_activite_* "
        "files (.txt or .zip); each replaces the previous extraction of its kind",
    )  # fmt: skip
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(handler=_annuaire_import)
    _add_search(annuaire, common)
    status = annuaire.add_parser("status", parents=[common], help="what was imported, and when")
    status.set_defaults(handler=_annuaire_status)


def _add_search(annuaire: Commands, common: Parser) -> None:
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
    search.add_argument("--page", type=positive, default=1, help="page number (1)")
    search.add_argument("--count", type=positive, default=50, help="entries per page (50)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=_annuaire_search)


# --- import --------------------------------------------------------------------------------


def _annuaire_import(args: argparse.Namespace) -> int:
    progress = _Progress() if sys.stderr.isatty() and not args.json else _LogProgress()
    summaries = import_annuaire(settings(args), args.files, progress)
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], ensure_ascii=False, indent=2))
        return 0
    for summary in summaries:
        _print_summary(summary)
    return 0


def _print_summary(s: Summary) -> None:
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


# --- search --------------------------------------------------------------------------------


def _annuaire_search(args: argparse.Namespace) -> int:
    query = _query(args)
    if query.empty:
        raise InputError("give at least one criterion (see --help)")
    page = search_annuaire(settings(args), query, professionals=args.professionals)
    if args.json:
        print(json.dumps(page.as_dict(), ensure_ascii=False, indent=2))
        return 0
    _print_table(page, args.professionals, args.page)
    return 0


def _query(args: argparse.Namespace) -> Query:
    return Query(
        mailbox=args.mailbox, national_id=args.rpps or args.national_id, name=args.name,
        family=args.family, given=args.given, profession=tuple(args.profession or ()),
        savoir_faire=tuple(args.savoir_faire or ()), postcode=args.postcode,
        department=args.department, mailbox_type=tuple(args.type or ()),
        structure=args.structure, offset=(args.page - 1) * args.count, limit=args.count,
    )  # fmt: skip


def _print_table(page: Page, professionals: bool, number: int) -> None:
    rows = [_row(item, professionals) for item in page.items]
    header = PROFESSIONAL_HEADER if professionals else MAILBOX_HEADER
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    last = page.offset + len(page.items)
    print(f"{page.total} found; showing {page.offset + 1 if rows else 0}-{last} (page {number})")


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
        return _professional_row(item, name, profession)
    return (item["national_id"] or "", name, profession, item["address"], item["type"],
            item["postal_address"]["postcode"])  # fmt: skip


def _professional_row(item: dict[str, Any], name: str, profession: str) -> tuple[str, ...]:
    boxes = ", ".join(m["address"] for m in item["mailboxes"])
    places = [a["postal_address"]["postcode"] for a in item["activities"]]
    places += [m["postal_address"]["postcode"] for m in item["mailboxes"]]
    return (item["national_id"] or "", name, profession, boxes, str(len(item["activities"])),
            ", ".join(sorted({p for p in places if p})))  # fmt: skip


# --- status --------------------------------------------------------------------------------


def _annuaire_status(args: argparse.Namespace) -> int:
    for entry in annuaire_status(settings(args)):
        if not entry["imported_at"]:
            print(f"{entry['kind']}: never imported")
            continue
        print(
            f"{entry['kind']}: {entry['entries']} entries from {entry['source']} "
            f"(imported {entry['imported_at']}: {entry['lines']} lines, {entry['added']} added, "
            f"{entry['changed']} changed, {entry['retired']} retired, {entry['rejected']} rejected)"
        )
    return 0
