"""Writes the annuaire test files (run once; the files are committed).

They carry the real headers of the Annuaire Santé extractions (DOMAIN.md §7)
and realistic lines: accents, empty fields, an address on two lines, every
mailbox type, ADELI and RPPS ids, Corsica and overseas postcodes, a BOM, CRLF
line ends, and a few bad lines that the import must reject with their reason.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

HERE = Path(__file__).parent


def columns(header: str) -> list[str]:
    return header.split("|")


MSS = columns(
    "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|"
    "Type identifiant structure|Identification Structure|Service de rattachement|"
    "Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|"
    "Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|"
    "Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|"
    "Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION|L3COMPLEMENTDISTRIBUTION|"
    "L4NUMEROVOIE|L4COMPLEMENTNUMEROVOIE|NL4TYPEVOIE|L4LIBELLEVOIE|L5LIEUDITMENTION|"
    "L6LIGNEACHEMINEMENT|Code postal|Département|Pays"
)

PS56 = columns(
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|"
    "Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|"
    "Code profession|Libellé profession|Code catégorie professionnelle|"
    "Libellé catégorie professionnelle|Code type savoir-faire|Libellé type savoir-faire|"
    "Code savoir-faire|Libellé savoir-faire|Code mode exercice|Libellé mode exercice|"
    "Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|"
    "Numéro FINESS établissement juridique|Identifiant technique de la structure|"
    "Raison sociale site|Enseigne commerciale site|Complément destinataire (coord. structure)|"
    "Complément point géographique (coord. structure)|Numéro Voie (coord. structure)|"
    "Indice répétition voie (coord. structure)|Code type de voie (coord. structure)|"
    "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|"
    "Mention distribution (coord. structure)|Bureau cedex (coord. structure)|"
    "Code postal (coord. structure)|Code commune (coord. structure)|"
    "Libellé commune (coord. structure)|Code pays (coord. structure)|"
    "Libellé pays (coord. structure)|Téléphone (coord. structure)|"
    "Téléphone 2 (coord. structure)|Télécopie (coord. structure)|"
    "Adresse e-mail (coord. structure)|Code Département (structure)|"
    "Libellé Département (structure)|Ancien identifiant de la structure|"
    "Autorité d'enregistrement|Code secteur d'activité|Libellé secteur d'activité|"
    "Code section tableau pharmaciens|Libellé section tableau pharmaciens|Code rôle|Libellé rôle|"
    "Code genre activité|Libellé genre activité"
)
PS48 = PS56[:48]


def line(header: list[str], trailing: bool = False, **values: str) -> str:
    names = dict(values)
    fields = [names.pop(h, "") for h in header]
    assert not names, names
    return "|".join(fields) + ("|" if trailing else "")


def m(**kw: str) -> dict[str, str]:
    keys = {
        "type": "Type de BAL", "address": "Adresse BAL", "idtype": "Type Identifiant PP",
        "id": "Identifiant PP", "nat": "Identification nationale PP",
        "stype": "Type identifiant structure", "sid": "Identification Structure",
        "service": "Service de rattachement", "civ": "Civilité d'exercice",
        "family": "Nom d'exercice", "given": "Prénom d'exercice",
        "cat": "Catégorie profession", "catl": "Libellé de catégorie profession",
        "prof": "Code Profession", "profl": "Libellé Profession", "sf": "Code savoir-faire",
        "sfl": "Libellé savoir-faire", "demat": "Dématérialisation",
        "rs": "Raison Sociale structure BAL", "ens": "Enseigne commerciale structure BAL",
        "l2": "L2COMPLEMENTLOCALISATION", "l3": "L3COMPLEMENTDISTRIBUTION",
        "num": "L4NUMEROVOIE", "rep": "L4COMPLEMENTNUMEROVOIE", "tv": "NL4TYPEVOIE",
        "voie": "L4LIBELLEVOIE", "l5": "L5LIEUDITMENTION", "l6": "L6LIGNEACHEMINEMENT",
        "cp": "Code postal", "dep": "Département", "pays": "Pays",
    }  # fmt: skip
    return {keys[k]: v for k, v in kw.items()}


MSS_ROWS = [
    m(type="PER", address="jean.dupont@medecin.mssante.fr", idtype="8", id="10003456789",
      nat="810003456789", stype="1", sid="750000001", service="Cardiologie", civ="DR",
      family="DUPONT", given="Jean", cat="C", catl="Civil", prof="10", profl="Médecin",
      sf="SM04", sfl="Cardiologie et maladies vasculaires", demat="O",
      rs="CENTRE HOSPITALIER DE TEST", ens="CH TEST", l2="Bâtiment B", num="3", rep="B",
      tv="R", voie="DES ÉCOLES", l6="75005 PARIS", cp="75005", dep="75", pays="FRANCE"),
    # the same mailbox on a second line (another structure): merged into one entry
    m(type="PER", address="Jean.Dupont@medecin.mssante.fr", idtype="8", id="10003456789",
      nat="810003456789", stype="1", sid="750000002", civ="DR", family="DUPONT", given="Jean",
      cat="C", catl="Civil", prof="10", profl="Médecin", sf="SM04",
      sfl="Cardiologie et maladies vasculaires", demat="O", rs="CLINIQUE DU PARC",
      l3="BP 12", cp="75012", pays="FRANCE"),
    m(type="PER", address="helene.leveque@infirmier.mssante.fr", idtype="0", id="131234567",
      nat="0131234567", family="LÉVÊQUE", given="Hélène", cat="C", catl="Civil", prof="60",
      profl="Infirmier", l6="13001 MARSEILLE", cp="13001", pays="FRANCE"),
    m(type="PER", address="francois.doe-martin@medecin.mssante.fr", idtype="8",
      id="10001122334", nat="810001122334", civ="DR", family="DOE-MARTIN", given="François",
      cat="C", catl="Civil", prof="10", profl="Médecin", sf="SM54",
      sfl="Médecine générale", demat="O", rs="CABINET MEDICAL DES LILAS", num="12",
      tv="AV", voie="DES LILAS", l6="97400 SAINT-DENIS", cp="97400", pays="FRANCE"),
    m(type="ORG", address="secretariat.cardio@ch-test.mssante.fr", stype="1",
      sid="750000001", service="Secrétariat de cardiologie", demat="O",
      rs="CENTRE HOSPITALIER DE TEST", ens="CH TEST", num="1", tv="AV",
      voie="DE LA RÉPUBLIQUE", l6="69003 LYON", cp="69003", dep="69", pays="FRANCE"),
    m(type="CAB", address="cabinet.santoni@cabinet.mssante.fr", idtype="8", id="10009876543",
      nat="810009876543", stype="3", sid="C10009876543", civ="DR", family="SANTONI",
      given="Marie-Ange", cat="C", catl="Civil", prof="40", profl="Chirurgien-Dentiste",
      demat="N", rs="CABINET DR SANTONI", num="12", tv="BD", voie="PAOLI",
      l6="20200 BASTIA", cp="20200", pays="FRANCE"),
    m(type="APP", address="lgc.cabinet@editeur.mssante.fr", stype="1", sid="330000009",
      service="Logiciel de cabinet", rs="ÉDITEUR SANTÉ", l6="33000 BORDEAUX", cp="33000",
      dep="33", pays="FRANCE"),
    m(type="PER", address="sophie.martin@pharmacien.mssante.fr", idtype="8", id="10007654321",
      nat="810007654321", civ="MME", family="MARTIN", given="Sophie", cat="C", catl="Civil",
      prof="21", profl="Pharmacien", demat="O", rs="PHARMACIE DU CENTRE",
      l6="44000 NANTES", cp="44000", pays="FRANCE"),
]  # fmt: skip
MSS_BAD = [
    "XYZ|bad.type@medecin.mssante.fr|8|10000000001|810000000001" + "|" * 26,
    "PER|short@medecin.mssante.fr|8|10000000002",
    "PER|pas une adresse|8|10000000003|810000000003" + "|" * 26,
    "PER|sans.id@medecin.mssante.fr" + "|" * 29,
]


def p(**kw: str) -> dict[str, str]:
    keys = {
        "idtype": "Type d'identifiant PP", "id": "Identifiant PP",
        "nat": "Identification nationale PP", "civc": "Code civilité d'exercice",
        "civ": "Libellé civilité d'exercice", "gc": "Code civilité", "g": "Libellé civilité",
        "family": "Nom d'exercice", "given": "Prénom d'exercice", "prof": "Code profession",
        "profl": "Libellé profession", "cat": "Code catégorie professionnelle",
        "catl": "Libellé catégorie professionnelle", "sft": "Code type savoir-faire",
        "sftl": "Libellé type savoir-faire", "sf": "Code savoir-faire",
        "sfl": "Libellé savoir-faire", "mode": "Code mode exercice",
        "model": "Libellé mode exercice", "siret": "Numéro SIRET site",
        "finess": "Numéro FINESS site", "sid": "Identifiant technique de la structure",
        "rs": "Raison sociale site", "ens": "Enseigne commerciale site",
        "l2": "Complément destinataire (coord. structure)",
        "num": "Numéro Voie (coord. structure)", "tvc": "Code type de voie (coord. structure)",
        "tv": "Libellé type de voie (coord. structure)", "voie": "Libellé Voie (coord. structure)",
        "cedex": "Bureau cedex (coord. structure)", "cp": "Code postal (coord. structure)",
        "commc": "Code commune (coord. structure)", "comm": "Libellé commune (coord. structure)",
        "tel": "Téléphone (coord. structure)", "mail": "Adresse e-mail (coord. structure)",
        "dep": "Code Département (structure)", "depl": "Libellé Département (structure)",
        "auth": "Autorité d'enregistrement", "sect": "Code secteur d'activité",
        "sectl": "Libellé secteur d'activité", "role": "Code rôle", "rolel": "Libellé rôle",
        "genre": "Code genre activité", "genrel": "Libellé genre activité",
    }  # fmt: skip
    return {keys[k]: v for k, v in kw.items()}


PS_ROWS = [
    p(idtype="8", id="10003456789", nat="810003456789", civc="DR", civ="Docteur", gc="M",
      g="Monsieur", family="DUPONT", given="JEAN", prof="10", profl="Médecin", cat="C",
      catl="Civil", sft="S", sftl="Spécialité ordinale", sf="SM04",
      sfl="Cardiologie et maladies vasculaires", mode="S", model="Salarié",
      finess="750000001", sid="F750000001", rs="CENTRE HOSPITALIER DE TEST", num="3",
      tvc="R", tv="Rue", voie="DES ECOLES", cedex="75005 PARIS", cp="75005", commc="75105",
      comm="Paris 5e", tel="0140000000", dep="75", depl="Paris", auth="CNOM/CNOM/CNOM",
      sect="SA01", sectl="Etablissement public de santé", role="FON-01",
      rolel="Médecin salarié", genre="GENR01", genrel="Activité standard"),
    # a second activity of the same doctor (liberal practice)
    p(idtype="8", id="10003456789", nat="810003456789", civc="DR", civ="Docteur", gc="M",
      g="Monsieur", family="DUPONT", given="JEAN", prof="10", profl="Médecin", cat="C",
      catl="Civil", sft="S", sftl="Spécialité ordinale", sf="SM04",
      sfl="Cardiologie et maladies vasculaires", mode="L", model="Libéral",
      sid="C10003456789", rs="CABINET DU DR DUPONT", num="8", tvc="BD", tv="Boulevard",
      voie="SAINT-MICHEL", cedex="75006 PARIS", cp="75006", tel="0143000000",
      auth="CNOM/CNOM/CNOM", sect="SA07", sectl="Cabinet individuel"),
    p(idtype="0", id="131234567", nat="0131234567", gc="MME", g="Madame", family="LÉVÊQUE",
      given="HÉLÈNE", prof="60", profl="Infirmier", cat="C", catl="Civil", mode="L",
      model="Libéral", sid="C013123456700", rs="CABINET INFIRMIER DU VIEUX-PORT",
      cedex="13001 MARSEILLE", cp="13001", auth="ARS/ADELI/ADELI", sect="SA07",
      sectl="Cabinet individuel"),
    p(idtype="8", id="10005555555", nat="810005555555", gc="M", g="Monsieur",
      family="N'GUYEN", given="Éric", prof="70", profl="Masseur-Kinésithérapeute", cat="C",
      catl="Civil", mode="L", model="Libéral", sid="C10005555555",
      rs="CABINET DE KINÉSITHÉRAPIE", cedex="97200 FORT-DE-FRANCE", cp="97200",
      auth="CNOMK/CNOMK/CNOMK"),
    p(idtype="8", id="10006666666", nat="810006666666", civc="DR", civ="Docteur", gc="MME",
      g="Madame", family="ÉTIENNE", given="Zoé", prof="50", profl="Sage-Femme", cat="C",
      catl="Civil", mode="S", model="Salarié", finess="690000003", sid="F690000003",
      rs="MATERNITÉ DE LYON", cedex="69004 LYON", cp="69004", auth="CNOSF/CNOSF/CNOSF"),
]  # fmt: skip
PS_BAD = [
    "8|123|" + "|" * 54,  # no national id and an RPPS of 3 digits
    "8|10007777777|810007777777|DR|Docteur",  # cut short
]


def write(name: str, text: str, bom: bool = False) -> None:
    (HERE / name).write_bytes((("\ufeff" if bom else "") + text).encode())


def main() -> None:
    mss_lines = [line(MSS, **r) for r in MSS_ROWS] + MSS_BAD
    write("Extraction_Correspondance_MSSante_202611220800.txt",
          "\r\n".join(["|".join(MSS), *mss_lines]) + "\r\n", bom=True)  # fmt: skip
    ps56 = ["|".join(PS56) + "|"] + [line(PS56, trailing=True, **r) for r in PS_ROWS] + PS_BAD
    write("PS_LibreAcces_Personne_activite_202611220800.txt", "\n".join(ps56) + "\n")
    rows48 = [{k: v for k, v in r.items() if k in PS48} for r in PS_ROWS[:3]]
    ps48 = ["|".join(PS48) + "|"] + [line(PS48, trailing=True, **r) for r in rows48]
    write("PS_LibreAcces_Personne_activite_201901010000.txt", "\n".join(ps48) + "\n", bom=True)
    with zipfile.ZipFile(HERE / "Extraction_Correspondance_MSSante_202611230800.zip", "w",
                         zipfile.ZIP_DEFLATED) as archive:  # fmt: skip
        # the next day: one mailbox retired, one changed, one added
        retired = "sophie.martin@pharmacien.mssante.fr"
        rows = [dict(r) for r in MSS_ROWS if r["Adresse BAL"] != retired]
        rows[2]["Code postal"] = "13002"
        rows.append(m(type="PER", address="zoe.etienne@sagefemme.mssante.fr", idtype="8",
                      id="10006666666", nat="810006666666", civ="DR", family="ÉTIENNE",
                      given="Zoé", cat="C", catl="Civil", prof="50", profl="Sage-Femme",
                      cp="69004", pays="FRANCE"))  # fmt: skip
        text = "\n".join(["|".join(MSS), *(line(MSS, **r) for r in rows)]) + "\n"
        archive.writestr("Extraction_Correspondance_MSSante_202611230800.txt", text.encode())
    write("bad_header.txt", "Nom|Prénom|Adresse\nDUPONT|Jean|jean@x.fr\n")


if __name__ == "__main__":
    main()
