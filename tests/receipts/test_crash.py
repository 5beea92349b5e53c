"""A worker killed between the SMTP server's acceptance and the database update resends that receipt once at most.

The sender runs in a child process that SIGKILLs itself at a chosen stage (no cleanup, no commit), against the same
real SMTP sink and database as the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from postmottak.casefile import models as m
from postmottak.casefile.db import Database
from postmottak.intake.receipts import send_pending
from tests.servers.smtp import SmtpSink

from .helpers import make_settings, receipt_of, register, sync_cases

pytestmark = [pytest.mark.smtp]
REPO = Path(__file__).resolve().parents[2]

CHILD = """
import os, signal, sys
from pathlib import Path
from postmottak.casefile.db import Database
from postmottak.intake.receipts import send_pending
from tests.receipts.helpers import make_settings

url, host, port, tmp, claim_seconds, stage, victim = sys.argv[1:8]

class Sink:  # only host and port are read
    pass

sink = Sink(); sink.host = host; sink.port = int(port)
db = Database(url)
settings = make_settings(sink, Path(tmp), db, claim_seconds=float(claim_seconds))

def checkpoint(at, receipt_id):
    if at == stage and receipt_id == int(victim):
        os.kill(os.getpid(), signal.SIGKILL)

send_pending(settings, db, checkpoint=checkpoint)
"""


def run_child(db: Database, sink: SmtpSink, tmp_path: Path, *, claim_seconds: float, stage: str, victim: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            db.url,
            sink.host,
            str(sink.port),
            str(tmp_path),
            str(claim_seconds),
            stage,
            str(victim),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.returncode


@pytest.fixture
def db(database: Database) -> Database:
    sync_cases(database)
    return database


def recipients(sink: SmtpSink) -> Counter[str]:
    return Counter(m.rcpt_tos[0] for m in sink.messages)


def test_kill_after_acceptance_resends_that_receipt_once(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    ids = [register(db, sender=f"person{i}@example.no") for i in range(3)]
    victim = receipt_of(db, ids[1]).id
    run_child(db, smtp_sink, tmp_path, claim_seconds=0, stage="accepted", victim=victim)
    # The server has the first two; the database only knows about the first.
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 1})
    assert [receipt_of(db, i).status for i in ids] == ["sent", "pending", "pending"]
    assert receipt_of(db, ids[1]).attempts == 1 and receipt_of(db, ids[2]).attempts == 0

    settings = make_settings(smtp_sink, tmp_path, db, claim_seconds=0)
    assert send_pending(settings, db)["sent"] == 2
    assert send_pending(settings, db)["sent"] == 0
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 2, "person2@example.no": 1})
    copies = [m.message["Message-ID"] for m in smtp_sink.messages if m.rcpt_tos[0] == "person1@example.no"]
    assert copies[0] == copies[1]  # the same receipt again, so mail clients can tell it is one
    assert [receipt_of(db, i).status for i in ids] == ["sent", "sent", "sent"]


def test_a_claimed_receipt_waits_for_the_claim_period(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    ids = [register(db, sender=f"person{i}@example.no") for i in range(2)]
    victim = receipt_of(db, ids[0]).id
    run_child(db, smtp_sink, tmp_path, claim_seconds=600, stage="accepted", victim=victim)
    settings = make_settings(smtp_sink, tmp_path, db, claim_seconds=600)
    counts = send_pending(settings, db)
    assert counts["sent"] == 1  # only the other one; the claimed one is not sent again during the claim
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 1})
    assert receipt_of(db, ids[0]).status == "pending"


def test_kill_before_sending_loses_nothing_and_sends_once(db: Database, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    ids = [register(db, sender=f"person{i}@example.no") for i in range(2)]
    victim = receipt_of(db, ids[0]).id
    run_child(db, smtp_sink, tmp_path, claim_seconds=0, stage="claimed", victim=victim)
    assert smtp_sink.messages == []
    settings = make_settings(smtp_sink, tmp_path, db, claim_seconds=0)
    assert send_pending(settings, db)["sent"] == 2
    assert send_pending(settings, db)["sent"] == 0
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 1})
    assert receipt_of(db, ids[0]).attempts == 2


def expire_claim(db: Database, receipt_id: int) -> None:
    """As if the claim period had passed."""
    with db.session() as session:
        session.execute(
            update(m.Receipt)
            .where(m.Receipt.id == receipt_id)
            .values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )


def test_kill_after_an_acceptance_resends_only_that_receipt_and_the_next_goes_out_at_once(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A receipt's `sent` commits with the next receipt's claim: killed after the server accepted the second of
    three, the first is sent, the second claimed (sent again once, after its claim period), the third untouched."""
    ids = [register(db, sender=f"person{i}@example.no") for i in range(3)]
    victim = receipt_of(db, ids[1]).id
    run_child(db, smtp_sink, tmp_path, claim_seconds=600, stage="accepted", victim=victim)
    assert [receipt_of(db, i).status for i in ids] == ["sent", "pending", "pending"]
    assert [receipt_of(db, i).attempts for i in ids] == [1, 1, 0]

    settings = make_settings(smtp_sink, tmp_path, db, claim_seconds=600)
    assert send_pending(settings, db)["sent"] == 1  # the third at once; the second waits for its claim period
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 1, "person2@example.no": 1})
    expire_claim(db, victim)
    assert send_pending(settings, db)["sent"] == 1
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 2, "person2@example.no": 1})
    assert [receipt_of(db, i).status for i in ids] == ["sent", "sent", "sent"]


def test_kill_after_the_next_claim_keeps_the_previous_receipt_sent(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Killed after claiming the second receipt, before sending it: the first one's `sent` was committed with that
    claim, so nothing is sent twice and the second goes out after its claim period."""
    ids = [register(db, sender=f"person{i}@example.no") for i in range(3)]
    victim = receipt_of(db, ids[1]).id
    run_child(db, smtp_sink, tmp_path, claim_seconds=600, stage="claimed", victim=victim)
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1})
    assert [receipt_of(db, i).status for i in ids] == ["sent", "pending", "pending"]

    settings = make_settings(smtp_sink, tmp_path, db, claim_seconds=600)
    assert send_pending(settings, db)["sent"] == 1
    expire_claim(db, victim)
    assert send_pending(settings, db)["sent"] == 1
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1, "person1@example.no": 1, "person2@example.no": 1})
    assert receipt_of(db, ids[1]).attempts == 2


def test_a_sent_mark_the_database_refused_is_written_by_the_next_pass_and_not_resent(
    db: Database, smtp_sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from postmottak.casefile import outbox
    from postmottak.casefile.db import DatabaseUnavailable

    intake_id = register(db, sender="person0@example.no")
    settings = make_settings(smtp_sink, tmp_path, db, claim_seconds=0)  # claimed and unmarked = due again at once
    write_mark = outbox.mark_sent

    def database_gone(*args: object, **kwargs: object) -> None:
        raise DatabaseUnavailable("the case database went away")

    monkeypatch.setattr(outbox, "mark_sent", database_gone)
    with pytest.raises(DatabaseUnavailable):
        send_pending(settings, db)
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1})
    assert receipt_of(db, intake_id).status == "pending"  # the server has it; the database does not know yet

    monkeypatch.setattr(outbox, "mark_sent", write_mark)
    assert send_pending(settings, db)["sent"] == 0
    assert recipients(smtp_sink) == Counter({"person0@example.no": 1})
    assert receipt_of(db, intake_id).status == "sent"
