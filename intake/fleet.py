"""Several workers, several mailboxes: each worker takes its share of the mailboxes through leases in the case
database, reads the mailboxes it holds, and gives them up when it stops or when the share changes.

One lease loop per worker (heartbeat, renew, take, give back) runs every `[leases] renew_seconds`; each held
mailbox has a thread of its own that runs the intake cycle every `[schedule] interval_seconds`, with every
registering transaction fenced by the lease's token (casefile/leases.py). With IMAP and `idle = true` that thread
also keeps an IDLE connection of its own on the mailbox (intake/idle.py), so new mail starts a cycle at once; the
watcher ends with the thread, that is when the lease is lost or given back. Receipts go out from a thread of their
own: each receipt is claimed in the database first, so several workers never send the same one at once. The staff
alerts and digest run in another thread on every worker, once per incident across them (intake/digest.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from postmottak.casefile import leases
from postmottak.casefile.db import Database, DatabaseUnavailable, WriteConflict
from postmottak.casefile.leases import LeaseLost
from postmottak.config.settings import Settings
from postmottak.intake.form_worker import FormWorkerPool
from postmottak.intake.idle import IdleWatcher
from postmottak.intake.pipeline import Intake
from postmottak.intake.sources.imap import ImapSource

log = logging.getLogger(__name__)

IntakeFactory = Callable[[str], Intake]


def fair_share(live_workers: list[str], me: str, mailboxes: int) -> int:
    """How many mailboxes `me` should hold: an even spread, the first workers (by id) taking the remainder."""
    if me not in live_workers:
        return 0
    base, extra = divmod(mailboxes, len(live_workers))
    return base + (1 if live_workers.index(me) < extra else 0)


def new_worker_id() -> str:
    host = socket.gethostname()[:40]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Held:
    """A mailbox this worker holds, and the thread reading it."""

    mailbox: str
    token: int
    intake: Intake
    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)  # a cycle is due now (IDLE saw new mail)
    thread: threading.Thread | None = None

    def halt(self) -> None:
        """Stop reading this mailbox; the reader leaves its wait at once."""
        self.stop.set()
        self.wake.set()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Fleet:
    """One worker process among several: the lease loop and one reader thread per held mailbox."""

    def __init__(self, settings: Settings, db: Database, make_intake: IntakeFactory, *, worker_id: str | None = None):
        self.settings = settings
        self.db = db
        self.make_intake = make_intake
        self.worker_id = worker_id or new_worker_id()
        self.mailboxes = settings.mailbox_names()
        self.lease_seconds = settings.leases.seconds
        self.held: dict[str, Held] = {}
        self.stopping = threading.Event()
        self._pool: FormWorkerPool | None = None
        self._settled = False
        leases.limit_idle_transactions(db, self.lease_seconds)

    # The lease loop ----------------------------------------------------------------------

    def run(self) -> None:
        """Until `stopping` is set: the lease loop here, the mailboxes in their threads, receipts in another."""
        log.info("worker %s: %d mailbox(es), lease %.0f s", self.worker_id, len(self.mailboxes), self.lease_seconds)
        receipts = threading.Thread(target=self._send_receipts, name="receipts", daemon=True)
        receipts.start()
        notifications = threading.Thread(target=self._notify, name="notifications", daemon=True)
        notifications.start()
        try:
            while not self.stopping.is_set():
                try:
                    self.tick()
                except DatabaseUnavailable as exc:  # the database is away: the fence keeps any commit safe meanwhile
                    log.error("worker %s: lease round failed: %s", self.worker_id, " ".join(exc.reason.split()))
                self.stopping.wait(self.settings.leases.renew_every)
        finally:
            self.shutdown()
            receipts.join(timeout=self.settings.smtp.timeout_seconds + 5)
            notifications.join(timeout=self.settings.smtp.timeout_seconds + 5)

    def tick(self) -> None:
        """One round: heartbeat, renew what is held, drop what is lost, take or give back to reach the share."""
        with self.db.session() as session:
            now = leases.heartbeat(session, self.worker_id, socket.gethostname(), os.getpid())
            live = leases.live_workers(session, now, self.lease_seconds)
        self._ensure_lease_rows()
        for held in list(self.held.values()):
            if not held.running and held.thread is not None:  # stopped (given back, or it lost the lease)
                self._give_back(held)
                continue
            with self.db.session() as session:
                kept = leases.renew(session, held.mailbox, self.worker_id, held.token, self.lease_seconds)
            if not kept:
                log.warning(
                    "worker %s: lease on %s lost (token %d); stopping it", self.worker_id, held.mailbox, held.token
                )
                held.halt()
                self._forget(held, release=False)
        if not self._settled:  # first round: only be seen, so workers started together share from the start
            self._settled = True
            return
        share = fair_share(live, self.worker_id, len(self.mailboxes))
        keeping = [h for h in self.held.values() if not h.stop.is_set()]
        for held in keeping[share:]:  # more than the share: finish the cycle, then give it back
            log.info(
                "worker %s: giving %s back (share %d of %d live workers)",
                self.worker_id,
                held.mailbox,
                share,
                len(live),
            )
            held.halt()
        if len(keeping) < share:
            self._take(share - len(keeping))

    def _ensure_lease_rows(self) -> None:
        try:
            with self.db.session() as session:
                leases.ensure_mailboxes(session, self.mailboxes)
        except WriteConflict:  # another worker added the same row at the same moment
            pass

    def run_once(self) -> bool:
        """One cycle of every mailbox no other worker holds, the due receipts, then every lease back. True if ok."""
        ok = True
        try:
            with self.db.session() as session:
                leases.heartbeat(session, self.worker_id, socket.gethostname(), os.getpid())
            self._ensure_lease_rows()
            self._take(len(self.mailboxes), thread=False)
            for held in list(self.held.values()):
                try:
                    ok = held.intake.run_cycle().ok and ok
                except LeaseLost as exc:
                    log.warning("worker %s: %s", self.worker_id, exc)
                    self._count_rejection()
                    ok = False
            if self.settings.smtp.configured and self.settings.receipts.enabled:
                from postmottak.intake.receipts import send_pending

                send_pending(self.settings, self.db)
        finally:
            self.shutdown()
        return ok

    def _take(self, wanted: int, *, thread: bool = True) -> None:
        with self.db.session() as session:
            free = [
                row.mailbox
                for row in leases.leases(session)
                if row.mailbox in self.mailboxes
                and row.mailbox not in self.held
                and (row.holder is None or row.expires_at is None or row.expires_at <= leases.db_now(session))
            ]
        for mailbox in free:
            if wanted <= 0:
                return
            with self.db.session() as session:
                token = leases.try_acquire(session, mailbox, self.worker_id, self.lease_seconds)
            if token is None:
                continue
            log.info("worker %s: took mailbox %s (token %d)", self.worker_id, mailbox, token)
            self._start(mailbox, token, thread=thread)
            wanted -= 1

    def _start(self, mailbox: str, token: int, *, thread: bool = True) -> None:
        intake = self.make_intake(mailbox)
        if self._pool is None:
            self._pool = intake.form_pool()
        intake._pool = self._pool  # one pool of form readers for every mailbox of this worker

        def fence(session: Session) -> None:
            leases.fence(session, mailbox, self.worker_id, token)

        intake.fence = fence
        held = Held(mailbox, token, intake)
        self.held[mailbox] = held
        if thread:
            held.thread = threading.Thread(target=self._read, args=(held,), name=f"mailbox-{mailbox}", daemon=True)
            held.thread.start()

    def _give_back(self, held: Held) -> None:
        self._forget(held, release=True)
        log.info("worker %s: gave mailbox %s back", self.worker_id, held.mailbox)

    def _forget(self, held: Held, *, release: bool) -> None:
        self.held.pop(held.mailbox, None)
        if release:
            with self.db.session() as session:
                leases.release(session, held.mailbox, self.worker_id, held.token)
        # A thread still running stops at its next fenced transaction at the latest; the pool and the database
        # are shared and closed in shutdown.

    # One mailbox -------------------------------------------------------------------------

    def _read(self, held: Held) -> None:
        interval = self.settings.schedule.interval_seconds
        watcher = self._idle_watcher(held)
        if watcher is not None:
            watcher.start()
        try:
            while not held.stop.is_set() and not self.stopping.is_set():
                held.wake.clear()  # before the cycle searches the folder: mail arriving during it asks again
                try:
                    held.intake.run_cycle()
                except LeaseLost as exc:
                    log.warning(
                        "worker %s: lease on %s lost: %s; the registration was refused and the mailbox is left",
                        self.worker_id,
                        held.mailbox,
                        exc,
                    )
                    self._count_rejection()
                    held.halt()
                    break
                except Exception:
                    log.exception("worker %s: cycle of mailbox %s failed", self.worker_id, held.mailbox)
                held.wake.wait(interval)  # the poll interval, or at once on new mail or a stop
        finally:
            if watcher is not None:
                watcher.stop()

    def _idle_watcher(self, held: Held) -> IdleWatcher | None:
        """An IMAP IDLE watcher for a held mailbox whose `[imap] idle` is on (a server without IDLE: polling)."""
        imap = held.intake.settings.imap
        if not imap.idle or not isinstance(held.intake.source, ImapSource):
            return None
        return IdleWatcher(
            held.intake.source, held.wake.set, renew_seconds=imap.idle_timeout_seconds, name=held.mailbox
        )

    def _count_rejection(self) -> None:
        try:
            with self.db.session() as session:
                leases.record_rejection(session, self.worker_id)
        except DatabaseUnavailable:
            log.error("worker %s: cannot record the refused registration", self.worker_id)

    # Receipts ----------------------------------------------------------------------------

    def _send_receipts(self) -> None:
        if not (self.settings.smtp.configured and self.settings.receipts.enabled):
            return
        from postmottak.intake.receipts import send_pending

        while not self.stopping.is_set():
            try:
                counts = send_pending(self.settings, self.db)
                if any(counts.values()):
                    log.info("receipts: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v))
            except Exception:
                log.exception("sending receipts failed")
            self.stopping.wait(min(self.settings.schedule.interval_seconds, 5))

    # Staff alerts and digest -------------------------------------------------------------

    def _notify(self) -> None:
        """The staff alerts and digest (intake/digest.py), every interval, on every worker: the round locks the
        notification state in the database, so with several workers each alert and digest still goes out once, and
        it goes on as long as any worker lives. A slow or refusing SMTP server only delays this thread."""
        from postmottak.intake.digest import scheduled_notify
        from postmottak.intake.scheduler import SideJob

        job = scheduled_notify(self.settings, self.db)
        if job is None:
            return
        side = SideJob("notify", job, self.settings.schedule.interval_seconds)
        while not self.stopping.is_set():
            side()
            self.stopping.wait(self.settings.schedule.interval_seconds)

    # Stop --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Finish the running cycles, give every lease back at once, and say this worker stopped."""
        self.stopping.set()
        for held in self.held.values():
            held.halt()
        deadline = time.monotonic() + 120
        for held in list(self.held.values()):
            if held.thread is not None:
                held.thread.join(max(0.0, deadline - time.monotonic()))
        try:
            with self.db.session() as session:
                leases.stop_worker(session, self.worker_id)
        except DatabaseUnavailable as exc:
            log.error("worker %s: cannot give the leases back (they expire): %s", self.worker_id, exc.reason)
        self.held.clear()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        log.info("worker %s stopped", self.worker_id)
