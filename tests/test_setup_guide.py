"""docs/setup.md's sandbox blocks run as written, with the exit codes they state."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDE = Path(__file__).parent.parent / "docs" / "setup.md"


def commands() -> list[tuple[str, int]]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.DOTALL):
        lines = block.strip().splitlines()
        if not lines or lines[0].strip() != "# runs against the sandbox":
            continue
        for line in lines[1:]:
            command, _, comment = line.partition("#")
            m = re.search(r"exit (\d)", comment)
            out.append((command.strip(), int(m.group(1)) if m else 0))
    return out


def test_the_guide_has_runnable_blocks() -> None:
    assert len(commands()) >= 8


@pytest.mark.slow
@pytest.mark.parametrize(("command", "code"), commands(), ids=[c for c, _ in commands()])
def test_guide_command(command: str, code: int, tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               COLUMNS="120")
    done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == code, (done.stdout[-1500:], done.stderr[-1500:])
