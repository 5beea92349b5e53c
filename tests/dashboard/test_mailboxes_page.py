"""The "Postkasser" page and the per-mailbox metrics: each configured mailbox with its reader, last poll, problems
and mail counts; a mailbox nobody reads and a failing one stand out."""

from __future__ import annotations

from sqlalchemy import func, select

from postmottak.casefile import mailboxes
from postmottak.casefile import models as m
from postmottak.dashboard.metrics import metrics_registry, render
from tests.dashboard.seed import SOURCE

HORING = "imap://horing@imap.example.no:993/INBOX"


def test_mailboxes_page_shows_reader_problems_and_counts_per_mailbox(reader, db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        registered = session.scalar(
            select(func.count()).select_from(m.IntakeRecord).where(m.IntakeRecord.status == m.REGISTERED)
        )
        run = mailboxes.start_poll(session, HORING)
        mailboxes.finish_poll(session, run, ok=False, fetched=0, counts={}, error="innlogging avvist")
    html = reader.get("/mailboxes").text
    first, second = html.split('<section class="card mailbox"')[1:]
    assert "postmottak" in first and "arbeider-a-4242" in first and "I orden" in first
    assert f"<code>{SOURCE}</code>" in first and f"Registrert: {registered}" in first
    assert "horing" in second and "ingen arbeider" in second and "innlogging avvist" in second
    assert '<span class="status failed">Feil</span>' in second and "Registrert: 0" in second
    assert '<a href="/mailboxes" aria-current=page>Postkasser</a>' in html


def test_metrics_count_mail_per_mailbox_and_name_each_mailbox_source(app, db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        registered = session.scalar(
            select(func.count()).select_from(m.IntakeRecord).where(m.IntakeRecord.status == m.REGISTERED)
        )
    text = render(metrics_registry(db, app.state.settings.mailbox_sources())).decode()
    assert f'postmottak_mailbox_records{{mailbox="postmottak",status="registered"}} {registered}.0' in text
    assert 'postmottak_mailbox_records{mailbox="horing",status="registered"} 0.0' in text
    assert f'postmottak_mailbox_source_info{{mailbox="postmottak",source="{SOURCE}"}} 1.0' in text
    assert 'postmottak_mailbox_retrying{mailbox="postmottak"} 0.0' in text
