"""`mash login`: the device authorization grant against a real OpenID provider, the token
file `mash lookup` reads, and its refresh when it has expired."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from mash.errors import IdentityError
from mash.identity import device
from tests.oidc_support import OidcProvider, approve_device, available, free_port

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
MASH = [sys.executable, "-m", "mash"]


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[OidcProvider]:
    provider = OidcProvider.start(tmp_path / "oidc", access_token_ttl=60)
    try:
        yield provider
    finally:
        provider.stop()


def login(idp: OidcProvider, token_file: Path, user: str, *extra: str) -> tuple[int, str]:
    proc = subprocess.Popen([*MASH, "login", "--issuer", idp.issuer, "--token-file",
                             str(token_file), *extra], stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    assert proc.stderr is not None
    first = proc.stderr.readline()
    found = re.search(r"open (\S+) and enter the code (\S+)", first)
    assert found, first
    approve_device(found.group(1), found.group(2), user)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, first + err


def test_login_writes_the_token_file_and_lookup_refreshes_it(idp: OidcProvider,
                                                             tmp_path: Path) -> None:
    token_file = tmp_path / "analyst.jwt"
    code, err = login(idp, token_file, "alice")
    assert code == 0, err
    assert f"token written to {token_file}" in err
    token = token_file.read_text().strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["agency"], claims["iss"]) == ("alice", "police", idp.issuer)
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    side = json.loads(device.refresh_path(token_file).read_text())
    assert side["issuer"] == idp.issuer and side["refresh_token"]
    # Not expiring: the same token is used as it is.
    assert device.fresh_token(token_file) == token
    # Expired (written back as one about to lapse): refreshed through the provider.
    soon = jwt.encode({**claims, "exp": 1}, "k" * 32, algorithm="HS256")
    token_file.write_text(soon + "\n")
    renewed = device.fresh_token(token_file)
    assert renewed != soon and renewed == token_file.read_text().strip()
    assert jwt.decode(renewed, options={"verify_signature": False})["sub"] == "alice"


def test_login_refusals_are_one_line(idp: OidcProvider, tmp_path: Path) -> None:
    wrong = subprocess.run([*MASH, "login", "--issuer", idp.issuer + "/", "--token-file",
                            str(tmp_path / "t")], capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip().count("\n") == 0
    assert "pass --issuer exactly as the provider names itself" in wrong.stderr
    down = subprocess.run([*MASH, "login", "--issuer", f"http://127.0.0.1:{free_port()}",
                           "--token-file", str(tmp_path / "t")], capture_output=True,
                          text=True, timeout=60)
    assert down.returncode != 0 and "cannot read the identity provider's discovery" \
        in down.stderr and down.stderr.strip().count("\n") == 0
    client = subprocess.run([*MASH, "login", "--issuer", idp.issuer, "--client-id", "nobody",
                             "--token-file", str(tmp_path / "t")], capture_output=True,
                            text=True, timeout=60)
    assert client.returncode != 0 and "check --client-id" in client.stderr
    assert not (tmp_path / "t").exists()


def test_login_bind_key_binds_the_token_and_its_refreshes(idp: OidcProvider,
                                                          tmp_path: Path) -> None:
    from mash.identity.dpop import ClientKey

    token_file = tmp_path / "analyst.jwt"
    code, err = login(idp, token_file, "alice", "--bind-key")
    assert code == 0, err
    key_file = device.proof_key_path(token_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = device.load_proof_key(token_file)
    assert key is not None
    claims = jwt.decode(token_file.read_text().strip(), options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.thumbprint}
    side = json.loads(device.refresh_path(token_file).read_text())
    endpoints = device.discover(idp.issuer)
    # The provider binds the refresh token to the key: another key cannot use it...
    with pytest.raises(IdentityError, match="would not refresh"):
        device.refresh(endpoints, "mash-cli", side["refresh_token"],
                       proof_key=ClientKey.generate())
    # ...the key's holder can, and the new token is bound to the same key.
    soon = jwt.encode({**claims, "exp": 1}, "k" * 32, algorithm="HS256")
    token_file.write_text(soon + "\n")
    renewed = jwt.decode(device.fresh_token(token_file), options={"verify_signature": False})
    assert renewed["cnf"] == {"jkt": key.thumbprint} and renewed["sub"] == "alice"
