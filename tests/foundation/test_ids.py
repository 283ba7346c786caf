"""Row ids from the per-process random buffer: version 4 UUIDs, unique, also across a fork."""

from __future__ import annotations

import os
import threading
import uuid

from app.models.base import new_id, new_id_hex, random_hex


def test_ids_are_version_4_uuids_and_unique() -> None:
    ids = [new_id() for _ in range(5000)]  # past several refills of the 4 KiB buffer
    for text in ids[::7]:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    assert len(set(ids)) == len(ids)
    hexed = new_id_hex()
    assert (len(hexed), uuid.UUID(hexed).version) == (32, 4)
    assert len({random_hex() for _ in range(1000)}) == 1000


def test_threads_never_get_the_same_bytes() -> None:
    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(new_id() for _ in range(3000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in drawn for i in ids]
    assert len(set(every)) == len(every) == 12000


def test_a_forked_child_does_not_repeat_its_parent() -> None:
    new_id()  # the parent's buffer is filled: a child must not reuse what is left of it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit at once
        os.write(write, "".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    parent = "".join(new_id() for _ in range(10))
    assert len(child) == len(parent) == 360
    assert not {child[i : i + 36] for i in range(0, 360, 36)} & {
        parent[i : i + 36] for i in range(0, 360, 36)
    }
