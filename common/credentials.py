"""Staff token and cluster secret generated once and kept under data_dir (mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

FILE_NAME = "secrets.json"


def load_or_create(data_dir: Path) -> dict[str, str]:
    """Return the stored secrets, creating the file (0600) on first use.

    O_EXCL makes creation race-free when several nodes start at once: the
    loser of the race reads what the winner wrote.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE_NAME
    fresh = {"staff_token": secrets.token_urlsafe(24), "cluster_secret": secrets.token_urlsafe(32)}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as f:
        json.dump(fresh, f)
    return fresh


def _read(path: Path) -> dict[str, str]:
    for _ in range(50):  # the creator may not have written yet
        text = path.read_text()
        if text:
            return json.loads(text)
        time.sleep(0.01)
    raise RuntimeError(f"{path} stays empty")
