from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from postmottak.casefile.storage import DocumentStore, StorageError


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    data = "Høringssvar fra Bærum kommune".encode()
    sha, rel = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert rel == f"sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.put(data) == (sha, rel)
    assert store.read(rel) == data and store.verify(rel, sha)
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.parametrize("evil", ["../../etc/passwd", "/etc/passwd", "sha256/../../../x", "a/../../b"])
def test_paths_cannot_leave_the_store(tmp_path: Path, evil: str) -> None:
    store = DocumentStore(tmp_path / "store")
    with pytest.raises(StorageError):
        store.path_for(evil)


def test_wrong_hash_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        DocumentStore(tmp_path).put(b"x", sha256="0" * 64)


def test_verify_detects_a_changed_byte(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    sha, rel = store.put(b"%PDF-1.7 original")
    path = store.path_for(rel)
    path.write_bytes(b"%PDF-1.7 0riginal")
    assert not store.verify(rel, sha)


def test_staged_files_take_their_names_only_when_published(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    first, second = store.stage(b"first"), store.stage(b"second")
    assert first.temp is not None and first.temp.is_file()
    assert not store.path_for(first.relative).exists(), "not under its final name before publish"
    store.publish([first, second])
    store.publish([first, second])  # again (a batch registered one by one after a rollback): nothing to do
    assert store.verify(first.relative, first.sha256) and store.verify(second.relative, second.sha256)
    assert not first.temp.exists()
    again = store.stage(b"first")
    assert again.temp is None, "content already in place is not written again"
    dropped = store.stage(b"never registered")
    store.discard([dropped])
    assert dropped.temp is not None and not dropped.temp.exists()
    assert not store.path_for(dropped.relative).exists()


def test_a_fan_out_directory_removed_after_use_is_made_again(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "store")
    first = store.stage(b"first")
    store.publish([first])
    shutil.rmtree(tmp_path / "store" / "sha256")  # e.g. a store emptied by hand while the worker runs
    again = store.stage(b"first")
    store.publish([again])
    assert again.temp is not None and store.verify(again.relative, again.sha256)


def test_a_link_out_of_the_store_is_refused_for_a_directory_and_for_a_file(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = DocumentStore(tmp_path / "store")
    placed = store.stage(b"placed")  # its directory is known to the store from now on
    store.publish([placed])
    sha = hashlib.sha256(b"linked").hexdigest()
    (tmp_path / "store" / "sha256" / sha[:2]).mkdir(exist_ok=True)
    (tmp_path / "store" / "sha256" / sha[:2] / sha[2:4]).symlink_to(outside)
    with pytest.raises(StorageError):
        store.stage(b"linked")
    target = store.path_for(placed.relative)
    target.unlink()
    target.symlink_to(outside / "file")
    with pytest.raises(StorageError):
        store.stage(b"placed")
    assert not any(outside.iterdir()), "nothing written outside the store"
