"""Every YAML the project reads is bounded: size, aliases, expansion (issue 17, section 4).

A billion-laughs agreement (1 KB that expands to 10^9 values) once ran `mash policy check` to
1.3 GB. These run the real CLI in a subprocess under an address-space limit and a timeout, so
a regression fails by running out of memory or time, not by passing slowly.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from mash.errors import ConfigError
from mash.yamlfile import MAX_BYTES, read_yaml
from tests.policy_helpers import copy_policies

MASH = [sys.executable, "-m", "mash"]
RSS_LIMIT_KB = 700 * 1024  # the CLI itself (regopy, grpc) needs well under 300 MB


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def mash(*args: str, timeout: float = 60) -> tuple[int, str, str, float]:
    """Run the real CLI, killing it past RSS_LIMIT_KB of memory or `timeout` seconds."""
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([*MASH, *args], stdout=out, stderr=err, text=True,
                                env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _rss_kb(proc.pid))
            if peak > RSS_LIMIT_KB or time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                pytest.fail(f"mash {' '.join(args[:2])} ran away: {peak // 1024} MB, "
                            f"{time.monotonic() - start:.1f} s")
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), time.monotonic() - start


LAUGHS = "\n".join(
    ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 10)]
)


def bomb(src: Path, name: str) -> Path:
    """Put the bomb into a real agreement, under a key the schema will read."""
    path = src / "mous" / name
    text = path.read_text(encoding="utf-8")
    path.write_text(LAUGHS + "\n" + text.replace("title:", "title_was:", 1)
                    + "\ntitle: *lol9\n", encoding="utf-8")
    return path


def test_billion_laughs_agreement_is_refused_by_policy_check(tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "policies")
    path = bomb(src, "police-mash-safeguarding.yaml")
    assert path.stat().st_size < 4096
    # It is a real bomb: plain safe_load shares one list 10 times at each of 9 levels
    plain = yaml.safe_load(path.read_text(encoding="utf-8"))["title"]
    assert plain[0] is plain[1] and plain[0][0] is plain[1][0]  # 10**9 strings if walked
    code, out, err, took = mash("policy", "check", "--src", str(src))
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and "more than 64 YAML aliases" in lines[0], lines[0]
    assert took < 30


def test_a_normal_agreement_with_a_few_aliases_still_loads(tmp_path: Path) -> None:
    """Positive control: anchors and aliases as people use them are fine."""
    src = copy_policies(tmp_path / "policies")
    path = src / "mous" / "police-mash-safeguarding.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    purposes = data["grants"][0]["purposes"]
    purposes["adult_safeguarding"]["lawful_basis"] = purposes["child_safeguarding"]["lawful_basis"]
    text = yaml.safe_dump(data, sort_keys=False)  # a shared object is written as &id001/*id001
    assert "&id001" in text and "*id001" in text
    path.write_text(text, encoding="utf-8")
    code, out, err, _ = mash("policy", "check", "--src", str(src), "--today", "2026-06-01")
    assert code == 0, out + err
    assert "police-mash-safeguarding" in out


def test_wide_bomb_with_few_aliases_is_refused_by_expansion(tmp_path: Path) -> None:
    """A bomb within the alias count (each alias names a wide list) is stopped by expansion."""
    wide = ", ".join(["x"] * 2000)
    text = (f"a: &a [{wide}]\nb: &b [" + ", ".join(["*a"] * 60) + "]\n")
    path = tmp_path / "wide.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="expands to more than 100,000 values"):
        read_yaml(path)
    path.write_text(f"a: &a [{wide}]\nb: [*a, *a]\n", encoding="utf-8")
    assert len(read_yaml(path)["b"][1]) == 2000
    long = "y" * 500_000  # one long string reused: bounded by the text it expands to
    path.write_text(f"a: &a {long}\nb: [" + ", ".join(["*a"] * 20) + "]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expands to more than 8 MiB of text"):
        read_yaml(path)
    path.write_text(f"a: &a {long}\nb: [*a, *a]\n", encoding="utf-8")
    assert read_yaml(path)["b"][1] == long


def test_recursive_alias_and_oversize_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "self.yaml"
    path.write_text("a: &a [1, *a]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="refers to itself"):
        read_yaml(path)
    big = tmp_path / "big.yaml"
    big.write_text("k: " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"big\.yaml: larger than 1 MiB"):
        read_yaml(big)
    with pytest.raises(ConfigError, match="nested more than"):
        deep = tmp_path / "deep.yaml"
        deep.write_text("[" * 80 + "]" * 80 + "\n", encoding="utf-8")
        read_yaml(deep)


@pytest.mark.parametrize("command", [
    ["agent", "check", "--config"],
    ["broker", "serve", "--config"],
    ["console", "serve", "--config"],
    ["lookup", "--name", "Ann Lee", "--dob", "2010-01-01", "--purpose", "child_safeguarding",
     "--stage", "triage", "--case", "C1", "--reason", "test", "--config"],
])
def test_every_config_file_is_bounded(tmp_path: Path, command: list[str]) -> None:
    """Agent, broker, console and client configs all go through the same loader."""
    path = tmp_path / "conf.yaml"
    path.write_text(LAUGHS + "\n", encoding="utf-8")
    code, out, err, took = mash(*command, str(path))
    assert code == 2, out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{path}: more than 64 YAML aliases" in err
    assert took < 30


def test_policy_test_cases_are_bounded(tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "policies")
    case = src / "tests" / "bomb.yaml"
    case.write_text(LAUGHS + "\n", encoding="utf-8")
    code, out, err, _ = mash("policy", "test", "--src", str(src))
    assert code != 0
    assert f"{case}: more than 64 YAML aliases" in err, out + err
    assert "Traceback" not in err
