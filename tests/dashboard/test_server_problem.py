"""The overview shows a server step refused after registration (the move to the processed folder) as one line."""

from __future__ import annotations

from fastapi.testclient import TestClient

from postmottak.casefile import mailboxes
from postmottak.dashboard.app import create_app
from tests.dashboard.conftest import login
from tests.dashboard.seed import seed_consultation

SOURCE = "imap://postmottak@imap.example.no:993/INBOX"
REFUSED = "flytting til IMAP-mappen «Behandlet» venter: serveren avviste CREATE (create failed: Permission denied)"


def _cycle(db, problem: str | None) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        run_id = mailboxes.start_poll(session, SOURCE)
    with db.session() as session:
        counts = mailboxes.with_server_problem({"registered": 1}, problem, 3)
        mailboxes.finish_poll(session, run_id, ok=True, fetched=1, counts=counts, error=None)


def test_overview_shows_a_refused_move_until_a_cycle_gets_through(settings, db, store, web):  # type: ignore[no-untyped-def]
    seed_consultation(db, store)
    _cycle(db, REFUSED)
    with TestClient(create_app(settings, db, web), follow_redirects=False) as client:
        login(client, "leser")
        html = client.get("/").text
        assert html.count('class="banner warn server-problem"') == 1
        assert "Permission denied" in html and "3 e-post venter på flytting" in html
        assert "Innhentingen går som normalt" in html, "registration itself is fine"
        _cycle(db, None)
        assert "server-problem" not in client.get("/").text
