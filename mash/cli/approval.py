"""`mash approval`: a supervisor's stage approval for lookups at stages that need one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt
import typer

from mash.cli.common import USAGE, fail, guarded
from mash.cli.token import _duration
from mash.files import write_atomic
from mash.identity import approvals

app = typer.Typer(help="Stage approvals: a supervisor approves a lookup at a stage such as "
                       "s47 (policies/federation.yaml: approval_required).",
                  no_args_is_help=True)


def _expiry(text: str, now: dt.datetime) -> dt.datetime:
    """'8h', '2d' or an ISO time ('2026-12-04T17:00Z'; UTC unless it says otherwise)."""
    text = text.strip()
    if text and text[-1] in "smhd" and text[:-1].replace(".", "", 1).isdigit():
        return now + _duration(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--expires {text!r} is not a duration like 8h or a time like "
             "2026-12-04T17:00Z", USAGE)
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if when <= now:
        fail("--expires is in the past", USAGE)
    return when


def read_approval(path: Path) -> str:
    """An approval file's JWS; a ValidationError-like exit for anything else."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the approval file {path}: "
             f"{getattr(exc, 'strerror', None) or type(exc).__name__}", USAGE)
    if not text or len(text) > approvals.MAX_CHARS or text.count(".") != 2:
        fail(f"{path} does not hold a stage approval (write one with mash approval grant)",
             USAGE)
    return text


@app.command("grant")
def grant(
    key: Path = typer.Option(..., exists=True, dir_okay=False,
                             help="The identity provider's signing key (as for mash token)."),
    issuer: str = typer.Option(..., help="Issuer name, as brokers and agents trust it."),
    approver: str = typer.Option(..., help="The supervisor's user id."),
    agency: str = typer.Option(..., help="The supervisor's (and the analyst's) agency id."),
    role: str = typer.Option("supervisor", help="The approver's role."),
    case: str = typer.Option(..., help="The case reference the lookups are for."),
    purpose: str = typer.Option(..., help="e.g. child_safeguarding."),
    stage: str = typer.Option(..., help="The stage approved, e.g. s47."),
    analyst: str = typer.Option(..., help="The user id of the analyst who will look up."),
    expires: str = typer.Option("8h", help="When it lapses: 8h, 2d, or 2026-12-04T17:00Z."),
    out: Path = typer.Option(..., help="Where to write the approval (mode 0600)."),
) -> None:
    """Sign a stage approval bound to one case, purpose, stage and analyst."""
    now = dt.datetime.now(dt.UTC)
    until = _expiry(expires, now)
    if approver == analyst:
        fail("an analyst cannot approve their own lookup: --approver and --analyst are the "
             "same", USAGE)
    token = guarded(lambda: approvals.issue_approval(
        key.read_bytes(), issuer=issuer, approver=approver, agency=agency, role=role,
        analyst=analyst, case_reference=case, purpose=purpose, stage=stage,
        expires_at=until, now=now))
    guarded(lambda: write_atomic(out, (token + "\n").encode(), private=True))
    typer.echo(f"approval {approvals.digest(token)} for {analyst}: {purpose} at {stage}, case "
               f"{case}, until {until:%Y-%m-%d %H:%M} UTC, written to {out}\n"
               f"attach it with: mash lookup ... --approval {out}")


@app.command("show")
def show(path: Path = typer.Argument(..., help="An approval file.")) -> None:
    """What an approval says (unverified: agents verify it against their trusted issuers)."""
    token = read_approval(path)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        fail(f"{path} does not hold a stage approval (malformed)", USAGE)
    for name in ("sub", "role", "agency", "iss", "analyst", "case_reference", "purpose",
                 "stage", "jti"):
        typer.echo(f"{'approver' if name == 'sub' else name}: {claims.get(name, '')}")
    for name in ("nbf", "exp"):
        value = claims.get(name)
        when = (dt.datetime.fromtimestamp(int(value), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
                if isinstance(value, int) else "-")
        typer.echo(f"{'valid from' if name == 'nbf' else 'expires'}: {when}")
    typer.echo(f"sha256: {approvals.digest(token)}")
