"""The annuaire: national extraction files in, lookups out (DOMAIN.md §7).

The files of tests/data/annuaire carry the real headers (31 columns for the
MSSanté extraction, 56 and 48 for the professionals' activities) and
realistic lines; `make_fixtures.py` there says what each line is for.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mss.annuaire import fhir, lookup
from mss.annuaire.formats import BadHeader, BadLine, Kind, detect_layout, fold
from mss.annuaire.importer import import_files
from mss.annuaire.lookup import Query
from mss.errors import InputError, MssError
from mss.store.db import Database

from .conftest import run_mss

DATA = Path(__file__).parent / "data" / "annuaire"
MSS_FILE = DATA / "Extraction_Correspondance_MSSante_202611220800.txt"
MSS_NEXT_DAY = DATA / "Extraction_Correspondance_MSSante_202611230800.zip"
PS56 = DATA / "PS_LibreAcces_Personne_activite_202611220800.txt"
PS48 = DATA / "PS_LibreAcces_Personne_activite_201901010000.txt"
BAD_HEADER = DATA / "bad_header.txt"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.close_sync()


def _read(db: Database, fn):  # type: ignore[no-untyped-def]
    return db.read_sync(fn)


def _addresses(db: Database, query: Query) -> list[str]:
    return [m["address"] for m in _read(db, lambda c: lookup.search_mailboxes(c, query)).items]


def _ids(db: Database, query: Query) -> list[str]:
    page = _read(db, lambda c: lookup.search_professionals(c, query))
    return [p["national_id"] for p in page.items]


# --- formats -----------------------------------------------------------------------------------


def test_the_layouts_fill_the_tables_columns_in_their_order() -> None:
    """A record's values go to the table columns by position: both lists must agree."""
    from mss.annuaire.formats import MSSANTE_COLUMNS, PS_COLUMNS
    from mss.store import annuaire as tables

    assert tuple(c for c, _ in MSSANTE_COLUMNS) == tables.MAILBOX_COLUMNS
    assert tuple(c for c, _ in PS_COLUMNS) == tables.ACTIVITY_COLUMNS


def test_headers_are_read_by_name_whatever_their_order_accents_or_case() -> None:
    header = MSS_FILE.read_text(encoding="utf-8-sig").splitlines()[0]
    names = header.split("|")
    shuffled = [names[1], names[0], *reversed(names[2:])]
    layout = detect_layout("|".join(n.upper() for n in shuffled))
    assert layout.kind is Kind.MSSANTE
    fields = [""] * len(shuffled)
    fields[0], fields[1] = "Jean.Dupont@Medecin.MSSante.fr", "PER"
    fields[shuffled.index("Identification nationale PP")] = "810003456789"
    record = layout.record(fields)
    assert record[:2] == ("PER", "jean.dupont@medecin.mssante.fr")


def test_the_56_and_48_column_layouts_are_both_known() -> None:
    for path, width in ((PS56, 57), (PS48, 49)):  # the trailing "|" makes one more field
        layout = detect_layout(path.read_text(encoding="utf-8-sig").splitlines()[0])
        assert (layout.kind, layout.width) == (Kind.PS, width)
    old = detect_layout(PS48.read_text(encoding="utf-8-sig").splitlines()[0])
    assert old.positions[-1] is None  # "Libellé genre activité" is absent from old files


def test_an_unknown_header_is_refused_naming_the_expected_columns() -> None:
    with pytest.raises(BadHeader) as info:
        detect_layout("Nom|Prénom|Adresse")
    assert "Adresse BAL" in str(info.value) and "Identification nationale PP" in str(info.value)


def test_a_line_with_the_wrong_number_of_fields_is_a_bad_line() -> None:
    layout = detect_layout(MSS_FILE.read_text(encoding="utf-8-sig").splitlines()[0])
    with pytest.raises(BadLine, match="4 fields instead of 31"):
        layout.record(["PER", "a@b.fr", "8", "1"])


@pytest.mark.parametrize("rpps", ["123", "\u0661" * 11])  # too short; Arabic-Indic digits
def test_an_rpps_number_must_have_11_digits(rpps: str) -> None:
    """DOMAIN.md §7: type `8`, RPPS, 11 digits (0-9: `str.isdigit` took others)."""
    layout = detect_layout(PS56.read_text(encoding="utf-8-sig").splitlines()[0])
    fields = [""] * layout.width
    fields[0], fields[1], fields[7], fields[9] = "8", rpps, "DUPONT", "10"
    with pytest.raises(BadLine, match="RPPS"):
        layout.record(fields)


@given(st.text(max_size=40))
def test_fold_is_idempotent_and_keeps_only_upper_case_words(text: str) -> None:
    key = fold(text)
    assert fold(key) == key
    assert all(c.isascii() and (c.isupper() or c.isdigit() or c == " ") for c in key)
    assert "  " not in key and key == key.strip()


def test_fold_ignores_accents_case_and_punctuation() -> None:
    assert fold("Lévêque") == fold("LEVEQUE") == "LEVEQUE"
    assert fold("Doe-Martin") == fold("doe martin") == "DOE MARTIN"
    assert fold("N'Guyen") == "N GUYEN"


# --- import ------------------------------------------------------------------------------------


def test_import_reports_added_rejected_and_merges_an_address_on_two_lines(db: Database) -> None:
    [summary] = import_files(db, [MSS_FILE])
    assert (summary.lines, summary.entries, summary.added, summary.rejected) == (12, 7, 7, 4)
    reasons = {r.line: r.reason for r in summary.rejects}
    assert "unknown mailbox type 'XYZ'" in reasons[10]
    assert reasons[11] == "4 fields instead of 31"
    assert "invalid mailbox address" in reasons[12]
    assert "no national id" in reasons[13]
    dupont = _read(db, lambda c: lookup.mailbox(c, "JEAN.DUPONT@medecin.mssante.fr"))
    assert dupont["lines"] == 2
    assert dupont["service"] == "Cardiologie"  # first line
    assert "BP 12" in dupont["postal_address"]["lines"]  # a gap filled by the second line
    assert dupont["structure"]["id"] == "750000001"


def test_a_full_extraction_replaces_the_previous_one(db: Database) -> None:
    import_files(db, [MSS_FILE])
    [summary] = import_files(db, [MSS_NEXT_DAY])  # zipped, as published
    assert (summary.added, summary.changed, summary.retired) == (1, 1, 1)
    gone = _read(db, lambda c: lookup.mailbox(c, "sophie.martin@pharmacien.mssante.fr"))
    assert gone is None
    assert _read(db, lambda c: lookup.mailbox(c, "zoe.etienne@sagefemme.mssante.fr"))
    [again] = import_files(db, [MSS_NEXT_DAY])
    assert (again.added, again.changed, again.retired) == (0, 0, 0)


def test_a_bad_header_is_refused_and_changes_nothing(db: Database) -> None:
    import_files(db, [MSS_FILE])
    with pytest.raises(InputError, match="Adresse BAL"):
        import_files(db, [MSS_NEXT_DAY, BAD_HEADER])  # refused before anything is written
    assert len(_addresses(db, Query(mailbox_type=("PER", "ORG", "APP", "CAB")))) == 7


def test_a_file_that_breaks_while_it_is_read_changes_nothing(db: Database, tmp_path: Path) -> None:
    import_files(db, [MSS_FILE])
    path = tmp_path / "Extraction_Correspondance_MSSante_3.zip"
    with zipfile.ZipFile(MSS_NEXT_DAY) as published:
        text = published.read(published.namelist()[0])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        blank = b"\r\n" * 600_000  # past the header's read: the end comes in the reader
        archive.writestr("Extraction_Correspondance_MSSante_3.txt", text + blank)
    data = bytearray(path.read_bytes())
    data[data.index(b"zoe.etienne")] = ord("Z")  # the member no longer matches its CRC-32
    path.write_bytes(bytes(data))
    with pytest.raises(MssError, match="CRC"):  # found by the reading process, at the end
        import_files(db, [path])
    assert _read(db, lambda c: lookup.mailbox(c, "sophie.martin@pharmacien.mssante.fr"))
    assert _read(db, lambda c: lookup.mailbox(c, "zoe.etienne@sagefemme.mssante.fr")) is None


def test_a_file_of_bad_lines_only_is_refused(db: Database, tmp_path: Path) -> None:
    header = MSS_FILE.read_text(encoding="utf-8-sig").splitlines()[0]
    path = tmp_path / "Extraction_Correspondance_MSSante_1.txt"
    path.write_text(header + "\nPER|nope\n", encoding="utf-8")
    with pytest.raises(InputError, match="every line"):
        import_files(db, [path])


def test_invalid_utf8_is_a_rejected_line_not_a_crash(db: Database, tmp_path: Path) -> None:
    lines = MSS_FILE.read_bytes().splitlines(keepends=True)
    path = tmp_path / "Extraction_Correspondance_MSSante_2.txt"
    path.write_bytes(b"".join([*lines[:3], lines[3].replace("Ê".encode(), b"\xca"), *lines[4:]]))
    [summary] = import_files(db, [path])
    assert any("not UTF-8" in r.reason and r.line == 4 for r in summary.rejects)


def test_professionals_and_activities_from_the_56_column_file(db: Database) -> None:
    [summary] = import_files(db, [PS56])
    assert (summary.lines, summary.entries, summary.activities, summary.rejected) == (7, 4, 5, 2)
    dupont = _read(db, lambda c: lookup.professional(c, "10003456789"))  # by RPPS
    assert dupont["civilite"] == "Docteur" and dupont["source"] == "ps"
    modes = sorted(a["mode"]["label"] for a in dupont["activities"])
    assert modes == ["Libéral", "Salarié"]
    assert dupont["activities"][0]["role"] == {"code": "FON-01", "label": "Médecin salarié"}


def test_the_48_column_file_imports_without_the_newer_columns(db: Database) -> None:
    [summary] = import_files(db, [PS48])
    assert (summary.entries, summary.activities, summary.rejected) == (2, 3, 0)
    leveque = _read(db, lambda c: lookup.professional(c, "131234567"))  # by ADELI
    assert leveque["family"] == "LÉVÊQUE" and leveque["activities"][0]["sector"] is None


def test_readers_see_the_old_directory_or_the_new_one_never_a_mix(
    db: Database, tmp_path: Path
) -> None:
    header = MSS_FILE.read_text(encoding="utf-8-sig").splitlines()[0]

    def extraction(name: str, postcode: str, count: int) -> Path:
        path = tmp_path / name
        rows = [
            f"PER|p{n}.{postcode}@medecin.mssante.fr|8|1{n:010d}|81{n:010d}||||DR|NOM{n}|X"
            f"|C|Civil|10|Médecin|||O|||||||||||{postcode}||FRANCE"
            for n in range(count)
        ]
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    old, new = extraction("old.txt", "11111", 3000), extraction("new.txt", "22222", 2000)
    import_files(db, [old])
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def snapshot(conn) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        a = lookup.search_mailboxes(conn, Query(postcode="11111", limit=0)).total
        b = lookup.search_mailboxes(conn, Query(postcode="22222", limit=0)).total
        return a, b

    def reader() -> None:
        while not stop.is_set():
            seen.add(db.read_sync(snapshot))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        import_files(db, [new])
        import_files(db, [old])
    finally:
        stop.set()
        thread.join()
    assert seen <= {(3000, 0), (0, 2000)}
    assert (3000, 0) in seen


def test_two_imports_at_once_are_refused(db: Database) -> None:
    from mss.store import annuaire_load

    with annuaire_load.exclusive(db), pytest.raises(InputError, match="another annuaire import"):
        import_files(db, [MSS_FILE])


# --- lookups -----------------------------------------------------------------------------------


@pytest.fixture
def loaded(db: Database) -> Database:
    import_files(db, [MSS_FILE, PS56])
    return db


def test_lookup_by_mailbox_ignores_case(loaded: Database) -> None:
    assert _addresses(loaded, Query(mailbox="Helene.Leveque@INFIRMIER.mssante.fr")) == [
        "helene.leveque@infirmier.mssante.fr"
    ]


def test_lookup_by_national_id_rpps_or_adeli(loaded: Database) -> None:
    for value in ("810003456789", "10003456789"):
        assert _addresses(loaded, Query(national_id=value)) == ["jean.dupont@medecin.mssante.fr"]
    assert _ids(loaded, Query(national_id="131234567")) == ["0131234567"]


def test_lookup_by_name_ignores_accents_and_case_and_matches_prefixes(loaded: Database) -> None:
    assert _addresses(loaded, Query(name="leve")) == ["helene.leveque@infirmier.mssante.fr"]
    assert _addresses(loaded, Query(given="hélè")) == ["helene.leveque@infirmier.mssante.fr"]
    assert _addresses(loaded, Query(family="doe-mar")) == ["francois.doe-martin@medecin.mssante.fr"]
    assert sorted(_addresses(loaded, Query(name="centre hosp"))) == [
        "jean.dupont@medecin.mssante.fr",  # the name of the structures of the mailboxes
        "secretariat.cardio@ch-test.mssante.fr",
    ]
    assert _ids(loaded, Query(name="etien")) == ["810006666666"]  # ÉTIENNE, from the PS file


def test_lookup_by_profession_savoir_faire_postcode_department_and_type(
    loaded: Database,
) -> None:
    assert _addresses(loaded, Query(profession=("40",))) == ["cabinet.santoni@cabinet.mssante.fr"]
    assert _addresses(loaded, Query(savoir_faire=("SM54",))) == [
        "francois.doe-martin@medecin.mssante.fr"
    ]
    assert _addresses(loaded, Query(postcode="750")) == ["jean.dupont@medecin.mssante.fr"]
    assert _addresses(loaded, Query(department="2B")) == ["cabinet.santoni@cabinet.mssante.fr"]
    assert _addresses(loaded, Query(department="974")) == ["francois.doe-martin@medecin.mssante.fr"]
    assert _addresses(loaded, Query(mailbox_type=("APP",))) == ["lgc.cabinet@editeur.mssante.fr"]
    assert _ids(loaded, Query(department="972")) == ["810005555555"]  # an activity's postcode


def test_criteria_combine_and_results_come_by_pages(loaded: Database) -> None:
    assert _addresses(loaded, Query(profession=("10",), postcode="97")) == [
        "francois.doe-martin@medecin.mssante.fr"
    ]
    everyone = Query(mailbox_type=("PER", "ORG", "APP", "CAB"), limit=3)
    first = _read(loaded, lambda c: lookup.search_mailboxes(c, everyone))
    assert first.total == 7 and len(first.items) == 3
    pages = [m["address"] for m in first.items]
    for offset in (3, 6):
        query = Query(**{**everyone.__dict__, "offset": offset})
        page = _read(loaded, lambda c, q=query: lookup.search_mailboxes(c, q))
        pages += [m["address"] for m in page.items]
    assert len(pages) == len(set(pages)) == 7


def test_a_professional_brings_its_mailboxes_from_the_other_file(loaded: Database) -> None:
    dupont = _read(loaded, lambda c: lookup.professional(c, "810003456789"))
    assert [m["address"] for m in dupont["mailboxes"]] == ["jean.dupont@medecin.mssante.fr"]
    santoni = _read(loaded, lambda c: lookup.professional(c, "810009876543"))
    assert santoni["source"] == "mssante"  # only in the mailbox extraction


def test_bad_query_values_are_input_errors() -> None:
    with pytest.raises(InputError):
        Query(mailbox_type=("XXX",))
    with pytest.raises(InputError):
        Query(limit=10_000)
    with pytest.raises(InputError):
        lookup.department_postcodes("Paris")


def test_a_bad_value_in_a_fhir_search_is_a_fhir_error_not_a_crash() -> None:
    """The FHIR API answers it with a 400 OperationOutcome (it was a 500)."""
    with pytest.raises(fhir.FhirError, match="unknown mailbox type 'XYZ'"):
        fhir.parse_search("PractitionerRole", [("mailbox-mss-type", "XYZ")])
    assert issubclass(fhir.FhirError, InputError)


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_import_prints_the_summary_and_each_rejected_line(instance: Path) -> None:
    result = run_mss("annuaire", "import", str(MSS_FILE), str(PS48), "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    assert (
        "annuaire mssante: 12 lines -> 7 mailboxes (7 added, 0 changed, 0 retired), 4 rejected"
        in result.stdout
    )
    assert "annuaire ps: 3 lines -> 2 professionals (2 added" in result.stdout
    assert f"rejected {MSS_FILE.name}:11: 4 fields instead of 31" in result.stderr


def test_cli_import_of_a_bad_header_fails_with_one_line(instance: Path) -> None:
    result = run_mss("annuaire", "import", str(BAD_HEADER), "--data-dir", str(instance))
    assert result.returncode == 1
    assert result.stderr.startswith("mss: error: bad_header.txt: the header is not one of")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_search_prints_a_table_or_json(instance: Path) -> None:
    assert run_mss("annuaire", "import", str(MSS_FILE), "--data-dir", str(instance)).returncode == 0
    table = run_mss("annuaire", "search", "--name", "lévê", "--data-dir", str(instance))
    assert table.returncode == 0, table.stderr
    assert "helene.leveque@infirmier.mssante.fr" in table.stdout and "1 found" in table.stdout
    raw = run_mss("annuaire", "search", "--rpps", "10003456789", "--json", "--data-dir",
                  str(instance))  # fmt: skip
    found = json.loads(raw.stdout)
    assert found["total"] == 1 and found["items"][0]["profession"]["label"] == "Médecin"
    empty = run_mss("annuaire", "search", "--data-dir", str(instance))
    assert empty.returncode == 1 and "at least one criterion" in empty.stderr
    status = run_mss("annuaire", "status", "--data-dir", str(instance))
    assert "mssante: 7 entries" in status.stdout and "ps: never imported" in status.stdout
