"""The OPA engine is an extra: the default engine, and every command, run without its client
(and without the aiohttp and requests it brings), and configuring `engine: opa` without it
says which extra to install in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mash.demo import federation
from mash.policy import engine
from mash.policy.errors import AgreementError
from tests.helpers import build_federation

# Run mash as if the extra were not installed: an entry of None in sys.modules makes Python's
# own import machinery refuse the module, exactly as when it is absent.
WITHOUT_OPA = ("import sys; sys.modules.update(dict.fromkeys(['opa_client', 'aiohttp', "
               "'requests'])); from mash.cli import main; sys.argv[0] = 'mash'; main()")


def _mash(*args: str, without_opa: bool) -> subprocess.CompletedProcess[str]:
    command = ([sys.executable, "-c", WITHOUT_OPA] if without_opa
               else [sys.executable, "-m", "mash"])
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> federation.Federation:
    return build_federation(tmp_path_factory.mktemp("opa-extra") / "fed", ["police"],
                            background=20)


def _with_engine(fed: federation.Federation, tmp: Path, name: str) -> Path:
    cfg = yaml.safe_load(fed.agent_configs["police"].read_text())
    if name == "opa":
        cfg["policy"]["engine"] = "opa"
        cfg["policy"]["opa"] = {"url": "http://127.0.0.1:9", "timeout_seconds": 0.2}
    path = tmp / f"agent-{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_default_engine_needs_no_opa_client(fed: federation.Federation,
                                                tmp_path: Path) -> None:
    done = _mash("agent", "check", "--config", str(_with_engine(fed, tmp_path, "rego")),
                 without_opa=True)
    assert done.returncode == 0, done.stderr
    assert "policy: revision" in done.stdout  # the bundle loaded and compiled in process


def test_opa_configured_without_the_extra_is_one_clear_line(fed: federation.Federation,
                                                            tmp_path: Path) -> None:
    config = _with_engine(fed, tmp_path, "opa")
    done = _mash("agent", "check", "--config", str(config), without_opa=True)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"{config}: policy: engine: opa needs the OPA client" in lines[0]
    assert "pip install 'mash-exchange[opa]'" in lines[0]
    # Positive control: with the extra installed the same file gets past the check and the
    # agent tries the OPA server (which is not there, so the policy does not load).
    done = _mash("agent", "check", "--config", str(config), without_opa=False)
    assert "opa needs the OPA client" not in done.stdout + done.stderr
    assert "could not load the bundle into OPA at http://127.0.0.1:9" in done.stdout


def test_the_engine_itself_refuses_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.opa_available()
    monkeypatch.setitem(sys.modules, "opa_client", None)
    assert not engine.opa_available()
    with pytest.raises(AgreementError, match=r"mash-exchange\[opa\]"):
        engine.OpaEngine(None, "http://127.0.0.1:9")  # type: ignore[arg-type]
