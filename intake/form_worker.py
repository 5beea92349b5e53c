"""Run document analysis (PDF/DOCX parsing) in child processes with a time limit and a memory
limit (RLIMIT_AS), so a PDF bomb or a parser crash cannot take the intake worker down.

Each document is analysed separately: a bomb attachment times out on its own while the form
beside it still parses. Nothing here raises: failures come back as document statuses
("timeout", "too_large", "crashed") with warnings.

A document already on disk (the intake's stored attachments) goes to the child as its path (FileDocument), which the
child reads itself: the bytes are not pickled through the pipe, and the worker need not hold them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import resource
import threading
import time
from typing import Any, NamedTuple, Sequence, Union

from postmottak.parsers.forms import DocumentInput, DocumentsAnalysis, SingleDocumentAnalysis, combine_analyses
from postmottak.parsers.forms.models import FormResult
from postmottak.parsers.forms.text_layer import TextLayer

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY_MB = 1024


class FileDocument(NamedTuple):
    """A document the child reads from a local file (a path the worker chose, never one from a sender)."""

    filename: str | None
    content_type: str
    path: str


AnyDocument = Union[DocumentInput, FileDocument]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["postmottak.parsers.forms"])


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass


def _analyse_in_child(kind: str, doc: DocumentInput, profile: str | None) -> dict[str, Any]:
    from postmottak.parsers.forms import analyse_single_document
    from postmottak.parsers.forms.documents import form_from_document, read_document
    from postmottak.parsers.forms.profile import resolve_profile

    try:
        if kind == "parse":  # parse_form, keeping the searchable PDF of a scan
            resolved = resolve_profile(profile)
            document = read_document(doc.data, doc.filename, profile=resolved)
            layer = document.text_layer.model_dump() if document.text_layer is not None else None
            return {"form": form_from_document(document, doc.data, resolved).model_dump(), "text_layer": layer}
        return {"ok": analyse_single_document(doc, profile).model_dump()}
    except MemoryError:
        return {"error": "too_large"}
    except RecursionError:
        return {"error": "unreadable"}
    except Exception as exc:  # a parser bug must not lose the mail
        return {"error": "crashed", "detail": f"{type(exc).__name__}: {exc}"[:300]}


def _worker_main(connection: multiprocessing.connection.Connection, memory_mb: int) -> None:
    """Serve analysis requests until the pipe closes."""
    _limit_memory(memory_mb)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, doc, profile, from_file = request
        try:
            if from_file:
                with open(doc[2], "rb") as handle:
                    doc = (doc[0], doc[1], handle.read())
            reply = _analyse_in_child(kind, DocumentInput(*doc), profile)
        except MemoryError:
            reply = {"error": "too_large"}
        except OSError as exc:  # the file went away: report it as a failed read, never crash the child
            reply = {"error": "crashed", "detail": f"{type(exc).__name__}: {exc}"[:300]}
        try:
            connection.send(reply)
        except MemoryError:
            connection.send({"error": "too_large"})
        except (BrokenPipeError, EOFError, ConnectionResetError):
            return  # the worker that asked is gone (killed or shut down): nothing to answer


def _failure(
    doc: AnyDocument, status: str, detail: str | None = None, timeout_s: float | None = None
) -> SingleDocumentAnalysis:
    name = doc.filename or "dokumentet"
    limit = f" (over {timeout_s:g} s)" if timeout_s is not None else ""
    messages = {
        "timeout": f"{name}: lesingen tok for lang tid{limit} og ble avbrutt.",
        "too_large": f"{name}: lesingen brukte for mye minne og ble avbrutt.",
        "crashed": f"{name}: lesingen feilet uventet{f' ({detail})' if detail else ''}.",
        "unreadable": f"{name}: dokumentet er for dypt nøstet eller skadet og kan ikke leses.",
    }
    return SingleDocumentAnalysis(status=status, warnings=[messages.get(status, f"{name}: {status}")])


def _reply_to_single(doc: AnyDocument, reply: dict[str, Any], timeout_s: float) -> SingleDocumentAnalysis:
    if "ok" in reply:
        return SingleDocumentAnalysis.model_validate(reply["ok"])
    return _failure(doc, reply.get("error", "crashed"), reply.get("detail"), timeout_s)


class _Worker:
    """One child process serving requests over a pipe."""

    def __init__(self, memory_mb: int) -> None:
        self.connection, child_end = _context.Pipe()
        self.process = _context.Process(target=_worker_main, args=(child_end, memory_mb), daemon=True)
        self.process.start()
        child_end.close()
        self.tasks_done = 0

    def run(
        self, doc: AnyDocument, profile: str | None, timeout_s: float, kind: str = "analyse"
    ) -> SingleDocumentAnalysis:
        """Analyse one document; on timeout or death the worker is killed (the caller replaces it).
        With kind="parse" a successful reply carries parse_form's FormResult in `.form`."""
        try:
            self.connection.send((kind, tuple(doc), profile, isinstance(doc, FileDocument)))
            if self.connection.poll(timeout_s):
                reply = self.connection.recv()
                self.tasks_done += 1
                if "form" in reply:
                    layer = reply.get("text_layer")
                    return SingleDocumentAnalysis(
                        status="form",
                        form=FormResult.model_validate(reply["form"]),
                        text_layer=TextLayer.model_validate(layer) if layer is not None else None,
                    )
                return _reply_to_single(doc, reply, timeout_s)
            self.kill()
            return _failure(doc, "timeout", timeout_s=timeout_s)
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(1)
            exitcode = self.process.exitcode
            self.kill()
            # Killed by the kernel or died allocating: most likely the memory limit.
            status = "too_large" if exitcode in (-9, 1, -6) else "crashed"
            return _failure(doc, status, f"exit code {exitcode}", timeout_s)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.connection.close()

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(2)
        self.kill()


def _as_input(doc: AnyDocument | tuple[str | None, str, bytes]) -> AnyDocument:
    return doc if isinstance(doc, FileDocument) else DocumentInput(*doc)


def _as_inputs(docs: Sequence[AnyDocument | tuple[str | None, str, bytes]]) -> list[AnyDocument]:
    return [_as_input(doc) for doc in docs]


def _profile_name(profile: Any) -> str | None:
    name: str | None = getattr(profile, "name", profile)  # a FormProfile, or its name already
    return name


def analyse_documents_isolated(
    docs: Sequence[AnyDocument],
    profile: str | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> DocumentsAnalysis:
    """analyse_documents in a child process: each document gets `timeout_s` and `memory_mb`. Never raises."""
    inputs = _as_inputs(docs)
    singles: list[SingleDocumentAnalysis] = []
    worker: _Worker | None = None
    try:
        for doc in inputs:
            if worker is None or not worker.alive:
                try:
                    worker = _Worker(memory_mb)
                except Exception as exc:  # cannot start a process at all
                    singles.append(_failure(doc, "crashed", f"{type(exc).__name__}: {exc}"))
                    worker = None
                    continue
            singles.append(worker.run(doc, _profile_name(profile), timeout_s))
    except Exception as exc:
        singles.extend(_failure(doc, "crashed", f"{type(exc).__name__}") for doc in inputs[len(singles) :])
    finally:
        if worker is not None:
            worker.close()
    return combine_analyses(singles, [doc.filename for doc in inputs])


def parse_form_isolated(
    data: bytes,
    filename: str | None = None,
    profile: str | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> FormResult:
    """parse_form for one untrusted file (e.g. `postmottak parse FILE`), with the same limits. Never raises."""
    return read_form_isolated(data, filename, profile, timeout_s=timeout_s, memory_mb=memory_mb)[0]


def read_form_isolated(
    data: bytes,
    filename: str | None = None,
    profile: str | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> tuple[FormResult, TextLayer | None]:
    """parse_form_isolated, and the searchable PDF when pages were read by OCR. Never raises."""
    from postmottak.parsers.forms.profile import resolve_profile

    doc = DocumentInput(filename, "application/octet-stream", data)
    try:
        resolved = resolve_profile(profile)
        profile_name = resolved.name
        # The child loads the profile again: by its path when it is a file (a learned profile), else by name.
        reference = profile if profile and (profile.endswith(".toml") or "/" in profile) else profile_name
        worker = _Worker(memory_mb)
    except Exception as exc:
        return FormResult(
            form_status="unreadable",
            profile=str(profile or ""),
            warnings=[f"Kunne ikke starte lesingen ({type(exc).__name__})."],
            warning_codes=["document.crashed"],
        ), None
    try:
        single = worker.run(doc, reference, timeout_s, kind="parse")
    finally:
        worker.close()
    if single.form is not None:
        return single.form, single.text_layer
    return FormResult.of_profile(
        resolved,
        form_status="unreadable",
        profile=profile_name,
        warnings=single.warnings,
        warning_codes=[f"document.{single.status}"] * len(single.warnings),
    ), None


# A queued document: the input, the profile name, and the future its analysis resolves.
_Task = tuple[AnyDocument, str | None, concurrent.futures.Future[SingleDocumentAnalysis]]


class FormWorkerPool:
    """A pool of analysis child processes (default os.cpu_count()), each with the time and memory
    limits; a worker that times out, dies, or has served `max_tasks_per_worker` documents is replaced.

        with FormWorkerPool() as pool:
            futures = [pool.submit(docs) for docs in mails]
            analyses = [f.result() for f in futures]
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        max_tasks_per_worker: int = 500,
    ) -> None:
        warn_once_if_no_ocr()
        self.size = max(1, size or os.cpu_count() or 1)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_tasks_per_worker = max_tasks_per_worker
        self._tasks: queue.Queue[_Task | None] = queue.Queue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"form-worker-{i}", daemon=True) for i in range(self.size)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        worker: _Worker | None = None
        try:
            while True:
                task = self._tasks.get()
                if task is None:
                    return
                doc, profile, future = task
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if worker is None or not worker.alive or worker.tasks_done >= self.max_tasks_per_worker:
                        if worker is not None:
                            worker.close()
                        worker = _Worker(self.memory_mb)
                    future.set_result(worker.run(doc, profile, self.timeout_s))
                except Exception as exc:
                    future.set_result(_failure(doc, "crashed", type(exc).__name__))
                    worker = None
        finally:
            if worker is not None:
                worker.close()

    def submit_document(
        self, doc: AnyDocument, profile: str | None = None
    ) -> concurrent.futures.Future[SingleDocumentAnalysis]:
        if self._closed:
            raise RuntimeError("FormWorkerPool is closed")
        future: concurrent.futures.Future[SingleDocumentAnalysis] = concurrent.futures.Future()
        self._tasks.put((_as_input(doc), _profile_name(profile), future))
        return future

    def submit(
        self, docs: Sequence[AnyDocument], profile: str | None = None
    ) -> concurrent.futures.Future[DocumentsAnalysis]:
        """Analyse a mail's documents (in parallel across workers); resolves to a DocumentsAnalysis."""
        inputs = _as_inputs(docs)
        parts = [self.submit_document(doc, profile) for doc in inputs]
        combined: concurrent.futures.Future[DocumentsAnalysis] = concurrent.futures.Future()
        remaining = [len(parts)]
        lock = threading.Lock()

        def finish(_part: concurrent.futures.Future[SingleDocumentAnalysis]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            singles = [
                p.result() if not p.cancelled() else _failure(d, "crashed", "cancelled")
                for p, d in zip(parts, inputs, strict=False)
            ]
            combined.set_result(combine_analyses(singles, [doc.filename for doc in inputs]))

        if not parts:
            combined.set_result(DocumentsAnalysis())
        for part in parts:
            part.add_done_callback(finish)
        return combined

    def analyse_documents(self, docs: Sequence[AnyDocument], profile: str | None = None) -> DocumentsAnalysis:
        return self.submit(docs, profile).result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._tasks.put(None)
        deadline = time.monotonic() + self.timeout_s + 10
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "FormWorkerPool":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_ocr_checked = False


def warn_once_if_no_ocr() -> bool:
    """Log once per process when Tesseract is missing: scans are still registered, staff type them in."""
    global _ocr_checked
    if _ocr_checked:
        return True
    _ocr_checked = True
    from postmottak.parsers.forms.ocr import tesseract_available

    if tesseract_available():
        return True
    log.warning(
        "Tesseract (OCR) er ikke installert: skannede høringssvar registreres, men feltene må føres inn manuelt "
        "(scans will need manual entry). Installer tesseract-ocr og tesseract-ocr-nor."
    )
    return False
