"""The README's walk-through, run as a user runs it, against the cluster `make run` starts.

The blocks run are the ```sh blocks of README.md right under a
`<!-- walkthrough ... -->` comment (readers do not see it); their commands run in
README order, in one bash with `set -euo pipefail` and the venv's bin first on PATH,
against config/cluster.toml copied onto free loopback ports (the README's
`localhost:8000` becomes that front-end; its `var/secrets.json` is that cluster's
file, as the commands run in the folder above the copy's data_dir). A command fails
the test when it exits non-zero, when one of its curl calls answers other than 2xx
(or other than the status a `# -> NNN` comment under it gives), or when the JSON a
`# {...}` comment under it shows differs from what it printed in any whole value.
The commands the test cannot run, and why: tests/support/readme.py SKIP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import load_cluster
from tests.support import readme


def bazar(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "bazar"), *args],  # noqa: S603
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def log_tails(data_dir: Path, lines: int = 15) -> str:
    out = []
    for path in sorted((data_dir / "logs").glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {path.name}\n" + "\n".join(tail))
    return "\n".join(out)


def test_every_skip_is_a_readme_walkthrough_command():
    commands = readme.walkthrough()
    assert len(commands) > len(readme.SKIP), "no marked ```sh block in README.md"
    bare = {c.bare for c in commands}
    assert not set(readme.SKIP) - bare, "a skip for a command the README no longer has"


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (make test installs it, as root)"
)
def test_the_readme_walkthrough_runs_against_make_runs_cluster(tmp_path):
    commands = [c for c in readme.walkthrough() if c.bare not in readme.SKIP]
    config, port_map = readme.make_run_config(tmp_path)
    env = readme.environment(config)
    data_dir = load_cluster(config, make_secrets=False).data_dir
    started = bazar(env, tmp_path, "up", "--detach", "--timeout", "60")  # what `make run` runs
    try:
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}\n{log_tails(data_dir)}"
        ran, failed = readme.run(commands, tmp_path, env, port_map)
        for r in ran:  # in order: the first thing wrong is named, not what it broke later
            if r is failed:
                pytest.fail(f"a README command failed\n{r.describe()}\n{log_tails(data_dir)}")
            check_output(r)
        assert [r.command for r in ran] == commands
    finally:
        bazar(env, tmp_path, "down")


def check_output(r: readme.Ran) -> None:
    """What the README says the command prints: its curl statuses, its JSON."""
    wanted = r.command.statuses
    if wanted:
        ok = r.statuses and all(s in wanted for s in r.statuses)
        assert ok, f"HTTP {r.statuses}, the README shows {wanted}\n{r.describe()}"
    else:
        assert all(200 <= s < 300 for s in r.statuses), f"HTTP {r.statuses}\n{r.describe()}"
    shown = r.command.json_shown
    if shown is None:
        return
    try:
        printed = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"the README shows JSON, the command printed something else\n{r.describe()}")
    got = readme.pairs_in(printed)
    missing = [pair for pair in readme.pairs_shown(shown) if pair not in got]
    assert not missing, f"the README shows {missing}, not printed\n{r.describe()}"
