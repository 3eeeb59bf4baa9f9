"""Request ids: 32 hex digits, and a forked server worker never repeats its parent's."""

from __future__ import annotations

import os
import re

import pytest

from dancu import app


def test_request_ids_are_32_hex_digits_and_differ() -> None:
    ids = {app._new_request_id() for _ in range(1_000)}
    assert len(ids) == 1_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_worker_draws_ids_of_its_own() -> None:
    """A server that forks its workers (gunicorn, say) from a process that has drawn ids:
    the child's generator is seeded anew, so its next id is not the parent's next one."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id to the parent, then out without pytest's cleanup
        try:
            os.write(write, app._new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        childs = pipe.read()
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", childs)
    assert childs != app._new_request_id()
