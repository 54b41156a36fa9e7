"""The README's walk-through as a test runs it (tests/integration/test_readme.py).

Which commands: every fenced ```sh block of README.md whose previous line is an HTML
comment starting `<!-- walkthrough` (invisible to readers), in README order. In a
block, a line ending in a backslash continues the command; comment lines are either
prose (dropped) or, right under a command, what it prints: a comment whose text
starts with `{` or `[` is the JSON it answers (lines after it starting `#  ` go on
with it), and `# -> 201` is the HTTP status of each of its curl calls. A command the
test cannot run is in SKIP, with the reason.

Where: a copy of config/cluster.toml (the cluster `make run` starts) on free loopback
ports, in `root/config/`, so its `data_dir = "../var"` is `root/var`, and the commands
run in `root`: the README's `var/secrets.json` is that cluster's. The default ports in
the commands (`localhost:8000`, ...) become the copy's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from common.config import VOTERS
from tests.support.cluster import ROOT, free_ports

README = ROOT / "README.md"
MAKE_RUN_CONFIG = ROOT / "config" / "cluster.toml"
MARKER = "<!-- walkthrough"

# command (without its trailing comment) -> why the test does not run it
SKIP = {
    "make run": "blocks until Ctrl-C; the test starts the same cluster with `bazar up --detach`",
    "make test": "the whole suite, this test among it",
}


@dataclass
class Command:
    text: str  # as in the README, continuation lines included
    line: int  # README line number of its first line
    output: list[str] = field(default_factory=list)  # the comment lines showing its output
    end: int = 0  # README line number of its last line, output comments included

    @property
    def bare(self) -> str:
        """The command without a trailing `# ...` comment (for the skip list)."""
        return re.sub(r"\s+#.*$", "", self.text).strip()

    @property
    def statuses(self) -> list[int]:
        shown = " ".join(self.output)
        return [int(s) for s in re.findall(r"^->\s*(\d{3})\b", shown)]

    @property
    def json_shown(self) -> str | None:
        shown = " ".join(self.output)
        return shown if shown[:1] in "{[" and shown else None


def walkthrough(readme: Path = README) -> list[Command]:
    """The commands of the marked blocks, in order."""
    lines = readme.read_text().splitlines()
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(MARKER) and i + 1 < len(lines):
            fence = lines[i + 1].strip()
            assert fence in ("```sh", "```bash"), f"README.md:{i + 2}: {MARKER} must precede ```sh"
            i += 2
            block: list[tuple[int, str]] = []
            while not lines[i].startswith("```"):
                block.append((i + 1, lines[i]))
                i += 1
            commands += _commands(block)
        i += 1
    return commands


def _commands(block: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    previous_was_output = False
    pending: Command | None = None
    for number, line in block:
        stripped = line.strip()
        if pending is not None:  # a continuation line
            pending.text += "\n" + line
            if not stripped.endswith("\\"):
                pending.end = number
                commands.append(pending)
                pending = None
            continue
        if stripped.startswith("#"):
            text = stripped[1:]
            starts_output = text.strip()[:1] in ("{", "[") or text.strip().startswith("->")
            right_under = commands and commands[-1].end == number - 1
            if right_under and (starts_output or (previous_was_output and text.startswith("  "))):
                commands[-1].output.append(text.strip())
                commands[-1].end = number
                previous_was_output = True
            else:
                previous_was_output = False
            continue
        previous_was_output = False
        if not stripped:
            continue
        command = Command(line, number, end=number)
        if stripped.endswith("\\"):
            pending = command
        else:
            commands.append(command)
    assert pending is None, f"README.md:{pending.line}: a block ends inside a command"
    return commands


def make_run_config(root: Path) -> tuple[Path, dict[int, int]]:
    """config/cluster.toml in `root/config/`, every node on a free loopback port (and the
    Raft address of each voter too: the default, port + 1000, could be taken). Returns the
    path and old port -> new port."""
    text = MAKE_RUN_CONFIG.read_text()
    nodes = tomllib.loads(text)["nodes"]
    voters = sum(1 for spec in nodes.values() if spec["service"] in VOTERS)
    ports = iter(free_ports(len(nodes) + voters))
    order = iter(nodes.values())
    port_map: dict[int, int] = {}

    def moved(match: re.Match) -> str:
        spec = next(order)
        new = next(ports)
        port_map[int(match[2])] = new
        line = f'{match[1]}127.0.0.1:{new}"'
        if spec["service"] in VOTERS:
            line += f'\nraft = "127.0.0.1:{next(ports)}"'
        return line

    text, count = re.subn(r'^(url = "http://)127\.0\.0\.1:(\d+)"', moved, text, flags=re.MULTILINE)
    assert count == len(nodes), "every node of config/cluster.toml has a url line"
    path = root / "config" / "cluster.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path, port_map


def localize(command: str, port_map: dict[int, int]) -> str:
    """The command with the default cluster's addresses replaced by the test cluster's."""
    for old, new in port_map.items():
        command = re.sub(rf"\b(?:localhost|127\.0\.0\.1):{old}(?!\d)", f"127.0.0.1:{new}", command)
    return command


STATUS_MARK = "__readme_http_status"
# Every curl of the walk-through also writes its HTTP status to stderr (read back per
# command), and gives up after 20 s rather than hanging the test. (A README curl with a
# -w of its own would replace this one: its statuses would go unchecked.)
_PRELUDE = f"""set -euo pipefail
curl() {{ command curl --max-time 20 -w '%{{stderr}}\\n{STATUS_MARK} %{{http_code}}\\n' "$@"; }}
__step() {{ exec >"$__out/$1.out" 2>"$__out/$1.err"; echo "$1" >"$__out/step"; }}
"""


@dataclass
class Ran:
    command: Command
    script: str  # what ran
    stdout: str
    stderr: str
    statuses: list[int]

    def describe(self) -> str:
        return (
            f"README.md:{self.command.line}:\n{self.command.text}\n"
            f"--- ran as:\n{self.script}\n--- stdout:\n{self.stdout[-3000:]}\n"
            f"--- stderr:\n{_without_marks(self.stderr)[-3000:]}"
        )


def run(
    commands: list[Command], cwd: Path, env: dict[str, str], port_map: dict[int, int]
) -> tuple[list[Ran], Ran | None]:
    """Run the commands in one bash, in order (so `T=$(...)` carries on), each one's
    output apart. Returns what ran, and the command that failed (None if none did)."""
    out = cwd / ".readme-steps"
    out.mkdir()
    scripts = [localize(c.text, port_map) for c in commands]
    body = "".join(f"__step {i}\n{s}\n" for i, s in enumerate(scripts))
    result = subprocess.run(
        ["bash", "-c", _PRELUDE + body + "__step done\n"],  # noqa: S607 - bash from PATH
        cwd=cwd,
        env={**env, "__out": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    step = (out / "step").read_text().strip() if (out / "step").exists() else "prelude"
    ran = []
    for i, (command, script) in enumerate(zip(commands, scripts, strict=True)):
        if not (out / f"{i}.out").exists():
            break
        stderr = (out / f"{i}.err").read_text(errors="replace")
        statuses = [int(s) for s in re.findall(rf"{STATUS_MARK} (\d+)", stderr)]
        stdout = (out / f"{i}.out").read_text(errors="replace")
        ran.append(Ran(command, script, stdout, stderr, statuses))
    if result.returncode == 0 and step == "done":
        return ran, None
    if step.isdigit():
        failed = ran[int(step)]
        failed.stderr += f"\n(exit code {result.returncode})"
        return ran, failed
    raise AssertionError(f"the walk-through's bash failed before a command ran:\n{result}")


def _without_marks(text: str) -> str:
    return re.sub(rf"\n?{STATUS_MARK} \d+\n?", "\n", text)


def pairs_shown(shown: str) -> list[tuple[str, object]]:
    """The `"key": value` pairs of a JSON output the README shows, where value is a whole
    scalar (a value cut short with `…` is left out)."""
    scalar = r'"(?:[^"\\…]|\\.)*"|-?\d+(?:\.\d+)?|null|true|false'
    found = re.findall(rf'"(\w+)":\s*({scalar})(?=\s*[,}}\]])', shown)
    return [(key, json.loads(value)) for key, value in found]


def pairs_in(value: object) -> list[tuple[str, object]]:
    """Every (key, scalar value) of every object in a JSON value, at any depth."""
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out += pairs_in(item) if isinstance(item, dict | list) else [(key, item)]
        return out
    if isinstance(value, list):
        return [pair for item in value for pair in pairs_in(item)]
    return []


def environment(config: Path) -> dict[str, str]:
    """The shell of a user who ran `make install`: the venv's bin (this Python's) first on PATH (so
    `bazar` and `python3` are the project's), the test cluster's config, no proxy (curl
    would send loopback calls through it) and no token override."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and k not in ("BAZAR_STAFF_TOKEN", "BAZAR_CLUSTER_SECRET")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["BAZAR_CONFIG"] = str(config)
    return env
