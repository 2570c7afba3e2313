"""`mash login`: sign in at the agency's identity provider with the device authorization
grant (RFC 8628) and write the token file that `mash lookup` uses; with --bind-key the token
is bound to a proof key (DPoP), with --bind-cert to the analyst's client certificate (RFC
8705, over the provider's mTLS endpoints)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mash.cli.common import OK, REFUSED, USAGE, fail, guarded
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
    bind_cert: bool = typer.Option(False, "--bind-cert",
                                   help="Bind the token to your mTLS client certificate (RFC "
                                        "8705): sign in over the provider's mTLS endpoints "
                                        "with --cert and --key (the client config's tls.cert "
                                        "and tls.key); lookups are then signed with that key."),
    cert: Path | None = typer.Option(None, "--cert", dir_okay=False,
                                     help="With --bind-cert: the client certificate (PEM)."),
    key_file: Path | None = typer.Option(None, "--key", dir_okay=False,
                                         help="With --bind-cert: its private key (PEM)."),
    idp_ca: Path | None = typer.Option(None, "--idp-ca", dir_okay=False,
                                       help="With --bind-cert: the CA bundle that verifies "
                                            "the provider's HTTPS certificate (default: the "
                                            "system's)."),
) -> None:
    """Sign in at the identity provider: open the address shown, enter the code, sign in."""

    def run() -> int:
        if bind_cert and bind_key:
            fail("give --bind-key or --bind-cert, not both: a token is bound one way", USAGE)
        if bind_cert and (cert is None or key_file is None):
            fail("--bind-cert needs --cert and --key: the client certificate and key that "
                 "mash lookup uses (the client config's tls.cert and tls.key)", USAGE)
        if not bind_cert and (cert or key_file or idp_ca):
            fail("--cert, --key and --idp-ca are for --bind-cert", USAGE)
        key = ClientKey.generate() if bind_key else None
        tls = (device.ClientCertificate(cert, key_file, idp_ca)
               if cert is not None and key_file is not None else None)
        endpoints = device.discover(issuer)
        if tls is not None:
            _ = tls.thumbprint  # a certificate and key that do not match: said before sign-in
            endpoints = endpoints.over_mtls()
        code = device.start(endpoints, client_id, scope=scope, tls=tls)
        print(f"To sign in, open {code.verification_uri} and enter the code {code.user_code}"
              f"\n(or open {code.verification_uri_complete})", file=sys.stderr, flush=True)
        try:
            tokens = device.poll(endpoints, client_id, code, proof_key=key, tls=tls)
        except IdentityError as exc:
            fail(str(exc), REFUSED)
        device.save(token_file, tokens, issuer=issuer, client_id=client_id, proof_key=key,
                    tls=tls)
        print(f"signed in: token written to {token_file}", file=sys.stderr)
        return OK

    raise typer.Exit(guarded(run))
