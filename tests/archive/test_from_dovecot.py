"""The whole path: real mail in Dovecot -> intake -> close the case -> Noark 5 extract -> official schemas."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import xmlschema
from lxml import etree

from postmottak.bootstrap import build_worker
from postmottak.config.settings import load_settings
from tests import mailfactory as mf
from tests.archive.conftest import run_cli
from tests.servers.dovecot import DovecotServer

NS = {"n5": "http://www.arkivverket.no/standarder/noark5/arkivstruktur"}


def test_extract_of_a_case_registered_from_real_mail(
    dovecot_server: DovecotServer, tmp_path: Path, official_schemas: Path
) -> None:
    items = mf.realistic_mailbox_items(24, seed=11)
    for item in items:
        dovecot_server.append(item.raw, item.internaldate)
    config = tmp_path / "postmottak.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n[storage]\npath = "{tmp_path / "documents"}"\n'
        f'[imap]\nhost = "{dovecot_server.host}"\nport = {dovecot_server.port}\nsecurity = "none"\n'
        f'username = "{dovecot_server.username}"\npassword = "{dovecot_server.password}"\n'
        f'[[cases]]\nnumber = "22/414"\ntitle = "{mf.CASE_TITLE}"\ndeadline = "2022-10-01"\n'
        'keywords = ["e-helsestrategi"]\n',
        encoding="utf-8",
    )
    intake = build_worker(load_settings(config))
    report = intake.run_cycle()
    intake.close()
    assert report.ok, report.errors
    registered = report.counts["registered"]
    assert registered == sum(1 for i in items if i.kind in (mf.KIND_ON_TIME, mf.KIND_LATE, mf.KIND_FORWARDED))

    refused = run_cli(config, "archive", "export", "--case", "22/414", "--output", str(tmp_path / "open"))
    assert refused.exit_code != 0 and "close" in refused.output.lower()

    assert run_cli(config, "case", "close", "22/414", "--user", "arkivar.anne").exit_code == 0
    output = tmp_path / "uttrekk"
    exported = run_cli(config, "archive", "export", "--case", "22/414", "--output", str(output))
    assert exported.exit_code == 0, exported.output
    validated = run_cli(config, "archive", "validate", str(output))
    assert validated.exit_code == 0, validated.output

    for xml_name, xsd_name in [
        ("arkivstruktur.xml", "arkivstruktur.xsd"),
        ("endringslogg.xml", "endringslogg.xsd"),
        ("loependeJournal.xml", "loependeJournal.xsd"),
        ("offentligJournal.xml", "offentligJournal.xsd"),
        ("arkivuttrekk.xml", "addml.xsd"),
    ]:
        xmlschema.XMLSchema10(str(official_schemas / xsd_name)).validate(str(output / xml_name))
        schema = etree.XMLSchema(etree.parse(str(official_schemas / xsd_name)))
        assert schema.validate(etree.parse(str(output / xml_name))), (xml_name, schema.error_log)

    tree = etree.parse(str(output / "arkivstruktur.xml"))
    posts = tree.findall(".//n5:registrering", NS)
    assert len(posts) == registered
    received = sorted(datetime.fromisoformat(p.findtext("n5:mottattDato", namespaces=NS)) for p in posts)
    expected = sorted(i.internaldate for i in items if i.kind in (mf.KIND_ON_TIME, mf.KIND_LATE, mf.KIND_FORWARDED))
    assert received == expected, "mottattDato is the server's receive time"
    for post in posts:
        assert post.findtext("n5:journalposttype", namespaces=NS) == "Inngående dokument"
        assert post.find("n5:korrespondansepart/n5:korrespondanseparttype", NS).text == "Avsender"
        objects = post.findall(".//n5:dokumentobjekt", NS)
        assert objects and all(o.findtext("n5:sjekksumAlgoritme", namespaces=NS) == "SHA256" for o in objects)
