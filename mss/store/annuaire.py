"""The tables of the annuaire (national directory): two sets, one live.

A full extraction replaces the previous one without readers ever seeing a
mix: each kind of file (`mssante`: the MSSanté mailbox extraction, `ps`: the
professionals' activities) has two physical sets of tables, `_a` and `_b`.
An import empties and fills the set that is not live, builds its indexes,
then flips `annuaire_state.live` in one short transaction. A reader reads the
pointer and the tables in one transaction (one snapshot), so it sees the old
directory or the new one.

Every text column is NOT NULL DEFAULT '' (the files have empty fields, not
NULLs); the `*_key` columns hold `formats.fold()`ed names for accent- and
case-insensitive prefix search, compared bytewise (COLLATE "C" on PostgreSQL)
so that a prefix is a range of the index.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

SETS = ("a", "b")
KINDS = ("mssante", "ps")

MAILBOX_COLUMNS = (
    "kind", "address", "id_type", "identifier", "national_id", "structure_id_type",
    "structure_id", "service", "civilite", "family", "given", "category_code",
    "category_label", "profession_code", "profession_label", "savoir_faire_code",
    "savoir_faire_label", "dematerialisation", "raison_sociale", "enseigne", "line2", "line3",
    "street_number", "street_repetition", "street_type", "street", "line5", "line6",
    "postcode", "department", "country",
)  # fmt: skip
ACTIVITY_COLUMNS = (
    "id_type", "identifier", "national_id", "civilite_code", "civilite", "gender_code",
    "gender", "family", "given", "profession_code", "profession_label", "category_code",
    "category_label", "savoir_faire_type_code", "savoir_faire_type", "savoir_faire_code",
    "savoir_faire_label", "mode_code", "mode_label", "siret", "siren", "finess", "finess_ej",
    "structure_id", "raison_sociale", "enseigne", "line2", "line3", "street_number",
    "street_repetition", "street_type_code", "street_type", "street", "line5", "line6",
    "postcode", "commune_code", "commune", "country_code", "country", "phone", "phone2", "fax",
    "email", "department", "department_label", "old_structure_id", "authority", "sector_code",
    "sector", "pharmacist_section_code", "pharmacist_section", "role_code", "role",
    "activity_kind_code", "activity_kind",
)  # fmt: skip
KEY_COLUMNS = ("family_key", "given_key", "org_key")
# One row per professional and per kind of file, merged from its lines.
PROFESSIONAL_COLUMNS = (
    "national_id", "id_type", "identifier", "civilite", "family", "given", "category_code",
    "category_label", "profession_code", "profession_label", "savoir_faire_code",
    "savoir_faire_label", "family_key", "given_key",
)  # fmt: skip

# Search keys compare bytewise on both databases.
Key = Text().with_variant(Text(collation="C"), "postgresql")


def _text(name: str) -> Column[str]:
    if name.endswith("_key"):
        return Column(name, Key, nullable=False, server_default="")
    return Column(name, Text, nullable=False, server_default="")


def mailbox_table(s: str) -> str:
    return f"annuaire_mailbox_{s}"


def activity_table(s: str) -> str:
    return f"annuaire_activity_{s}"


def professional_table(kind: str, s: str) -> str:
    return f"annuaire_pro_{kind}_{s}"


# Secondary indexes: dropped before a set is filled, built again after.
def secondary_indexes(kind: str, s: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(index name, table, columns) of the set `s` of a kind of file."""
    pro = professional_table(kind, s)
    common = [
        (f"ix_{pro}_name", pro, ("family_key", "given_key")),
        (f"ix_{pro}_given", pro, ("given_key",)),
        (f"ix_{pro}_profession", pro, ("profession_code",)),
        (f"ix_{pro}_savoir_faire", pro, ("savoir_faire_code",)),
    ]
    if kind == "mssante":
        t = mailbox_table(s)
        return [
            (f"ix_{t}_address", t, ("address",)),  # one row per address: the importer merges
            (f"ix_{t}_national_id", t, ("national_id",)),
            (f"ix_{t}_name", t, ("family_key", "given_key")),
            (f"ix_{t}_org", t, ("org_key",)),
            (f"ix_{t}_postcode", t, ("postcode",)),  # departments too: a range of postcodes
            (f"ix_{t}_structure", t, ("structure_id",)),
            *common,
        ]
    t = activity_table(s)
    return [
        (f"ix_{t}_national_id", t, ("national_id",)),
        (f"ix_{t}_structure", t, ("structure_id",)),
        (f"ix_{t}_postcode", t, ("postcode",)),
        (f"ix_{t}_org", t, ("org_key",)),
        *common,
    ]


def define(metadata: MetaData) -> None:
    """Add the annuaire's tables to the store's metadata."""
    for s in SETS:
        Table(
            mailbox_table(s),
            metadata,
            Column("line", Integer, primary_key=True, autoincrement=False),
            *(_text(c) for c in MAILBOX_COLUMNS),
            *(_text(c) for c in KEY_COLUMNS),
            Column("lines", Integer, nullable=False, server_default="1"),
        )
        Table(
            activity_table(s),
            metadata,
            Column("line", Integer, primary_key=True, autoincrement=False),
            *(_text(c) for c in ACTIVITY_COLUMNS),
            *(_text(c) for c in KEY_COLUMNS),
        )
        for kind in KINDS:
            Table(
                professional_table(kind, s),
                metadata,
                Column("national_id", Text, primary_key=True),
                *(_text(c) for c in PROFESSIONAL_COLUMNS if c != "national_id"),
            )
        for kind in KINDS:
            for name, table, columns in secondary_indexes(kind, s):
                Index(name, *(metadata.tables[table].c[c] for c in columns))
    Table(
        "annuaire_state",
        metadata,
        Column("kind", String(16), primary_key=True),
        Column("live", String(1), nullable=False),
        Column("source", Text, nullable=False, server_default=""),
        Column("imported_at", DateTime(timezone=True), nullable=True),
        Column("entries", Integer, nullable=False, server_default="0"),
        Column("lines", Integer, nullable=False, server_default="0"),
        Column("added", Integer, nullable=False, server_default="0"),
        Column("changed", Integer, nullable=False, server_default="0"),
        Column("retired", Integer, nullable=False, server_default="0"),
        Column("rejected", Integer, nullable=False, server_default="0"),
    )
