"""`mash login`: sign in at the agency's identity provider with the device authorization
grant (RFC 8628) and write the token file that `mash lookup` uses."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mash.cli.common import OK, REFUSED, fail, guarded
from mash.errors import IdentityError
from mash.identity import device
from mash.identity.dpop import ClientKey


def login(
    issuer: str = typer.Option(..., "--issuer", envvar="MASH_ISSUER",
                               help="The identity provider's issuer URL. Env: MASH_ISSUER."),
    client_id: str = typer.Option("mash-cli", "--client-id",
                                  help="The CLI's client id registered at the provider."),
    token_file: Path = typer.Option(..., "--token-file",
                                    help="Where to write the token (the client config's "
                                         "token_file)."),
    scope: str = typer.Option(device.SCOPE, "--scope", help="Scopes to ask for."),
    bind_key: bool = typer.Option(False, "--bind-key",
                                  help="Bind the token to a new proof key (RFC 9449 DPoP), "
                                       "written beside the token file (TOKEN_FILE.key)."),
) -> None:
    """Sign in at the identity provider: open the address shown, enter the code, sign in."""

    def run() -> int:
        key = ClientKey.generate() if bind_key else None
        endpoints = device.discover(issuer)
        code = device.start(endpoints, client_id, scope=scope)
        print(f"To sign in, open {code.verification_uri} and enter the code {code.user_code}"
              f"\n(or open {code.verification_uri_complete})", file=sys.stderr, flush=True)
        try:
            tokens = device.poll(endpoints, client_id, code, proof_key=key)
        except IdentityError as exc:
            fail(str(exc), REFUSED)
        device.save(token_file, tokens, issuer=issuer, client_id=client_id, proof_key=key)
        print(f"signed in: token written to {token_file}", file=sys.stderr)
        return OK

    raise typer.Exit(guarded(run))
