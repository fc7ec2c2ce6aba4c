"""`mss backup DIR` and `mss restore DIR --data-dir NEW` (the operation: admin/backup.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mss.admin.backup import backup, restore
from mss.cli.base import Commands, Parser, settings
from mss.config import CONFIG_FILE
from mss.errors import InputError
from mss.instance import default_data_dir

BACKUP_HELP = """\
Copy the installation into DIR (new or empty) while mss serves: the database as of one
commit (SQLite's backup API, or pg_dump for PostgreSQL; the blobs are in it), mss.toml,
traces.head (the DMP traces' chain head) and MANIFEST.json (version, time, schema
revision, SHA-256 of each file). The keys (blob key ring, TLS, DKIM, Web Push) are NOT
copied unless --with-keys: save them apart; the command prints where they are.
"""

RESTORE_HELP = """\
Put the backup in DIR in place as a new installation in --data-dir (which must be empty
or missing), after checking every hash of its manifest. PostgreSQL: set the target
database (MSS_STORAGE_URL), which must exist and be empty. Then the DMP traces' chain is
walked up to the head saved in the backup. Exit 1 on any refusal.
"""


def register(commands: Commands, common: Parser) -> None:
    save = commands.add_parser(
        "backup", parents=[common], help="copy the data while mss serves",
        description=BACKUP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    save.add_argument("folder", type=Path, metavar="DIR")
    save.add_argument("--with-keys", action="store_true", help="copy the keys too (see above)")
    save.set_defaults(handler=_backup)
    back = commands.add_parser(
        "restore", help="put a backup in place in an empty data directory",
        description=RESTORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    back.add_argument("folder", type=Path, metavar="DIR")
    back.add_argument("--data-dir", type=Path, required=True, help="the new installation folder")
    back.set_defaults(handler=_restore)


def _backup(args: argparse.Namespace) -> int:
    config = args.config or (args.data_dir or default_data_dir()) / CONFIG_FILE
    report = backup(settings(args), config, args.folder, with_keys=args.with_keys)
    manifest = report.manifest
    print(f"backup written to {report.folder}: {len(manifest['files'])} files, "
          f"schema {manifest['database']['schema_revision']}, "
          f"DMP traces head {manifest['traces_head'] or 'none'}")  # fmt: skip
    if report.key_folders:
        print("Les clés ne sont PAS dans la sauvegarde (the keys are NOT in the backup); "
              "save these folders apart, a restore cannot read the data without them:")  # fmt: skip
        for folder in report.key_folders:
            print(f"  {folder}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    report = restore(args.folder, args.data_dir)
    check = report.verification
    print(f"restored into {report.data_dir}; {check.traces} DMP traces, chain "
          f"{'intact' if check.ok else 'BROKEN'}; head {check.head}")  # fmt: skip
    for problem in check.problems:
        print(problem, file=sys.stderr)
    if report.missing_keys:
        print("Clés à remettre en place (put the keys back) before `mss serve`:")
        for folder in report.missing_keys:
            print(f"  {folder}")
    if not check.ok:
        raise InputError("la chaîne des traces DMP est rompue (the DMP traces chain is broken)")
    return 0
