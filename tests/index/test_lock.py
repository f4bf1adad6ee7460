"""One owner per data directory: the lock names its holder, refuses a second one, and is free when its holder dies."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from index.lock import LOCK_FILE, DataDirHeld, DataDirLock, Holder, holder


def test_a_held_directory_names_its_holder_and_refuses_a_second_one(tmp_path):
    assert holder(tmp_path) is None
    with DataDirLock(tmp_path, "http://127.0.0.1:7860"):
        assert holder(tmp_path) == Holder(os.getpid(), "http://127.0.0.1:7860")
        with pytest.raises(DataDirHeld) as refused, DataDirLock(tmp_path, "http://127.0.0.1:7861"):
            pass
        assert refused.value.holder == Holder(os.getpid(), "http://127.0.0.1:7860")
        assert "held by the citeqa server at http://127.0.0.1:7860" in str(refused.value)
    assert holder(tmp_path) is None and not (tmp_path / LOCK_FILE).exists()


def test_a_lock_left_by_a_dead_server_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "url": "http://127.0.0.1:9"}))
    assert holder(tmp_path) is None  # its holder is gone: nobody holds the directory
    with caplog.at_level(logging.WARNING, logger="citeqa"), DataDirLock(tmp_path, "http://127.0.0.1:7860"):
        assert holder(tmp_path) == Holder(os.getpid(), "http://127.0.0.1:7860")
    assert f"from a server that is gone (pid {int(dead.stdout)}, http://127.0.0.1:9)" in caplog.text
