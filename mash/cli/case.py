"""`mash case run family.yaml`: a household looked up together, printed as the family picture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mash.cases.casefile import CaseFileError, load_case
from mash.cases.picture import FamilyPicture
from mash.cases.run import CaseLookupError, run_case
from mash.cli.common import FAILED, GRPC_EXIT, OK, PARTIAL, fail, guarded, problems
from mash.cli.lookup import ConfigOption, TokenOption, _client

app = typer.Typer(help="Cases: the people in a referral's household, looked up together.",
                  no_args_is_help=True)
CELL_STYLES = {"KNOWN": "bold green", "NOT_KNOWN": "bold blue", "WITHHELD": "bold yellow",
               "NOT_CHECKED": "bold white on red"}


def print_picture(picture: FamilyPicture, console: Console | None = None) -> None:
    console = console or Console()
    case = picture.case
    table = Table(title=f"Family picture: case {case.reference} ({case.purpose}, {case.stage}, "
                        f"{case.urgency.upper()})", show_lines=True)
    table.add_column("Person")
    agencies = picture.agencies
    for _, name in agencies:
        table.add_column(name, no_wrap=False)
    for row in picture.rows:
        cells = []
        for agency, _ in agencies:
            cell = row.cell(agency)
            text = Text(cell.text, style=CELL_STYLES[cell.state])
            if cell.reason:
                text.append(f"\n{cell.reason}", style="italic")
            cells.append(text)
        table.add_row(Text(f"{row.person.label()}\n{row.person.relationship}"), *cells)
    console.print(table)


@app.command("run")
def run(
    case_file: Path = typer.Argument(..., help="The case file (YAML): reference, purpose, "
                                              "stage, urgency, reason, people."),
    timeout: float = typer.Option(15.0, min=0.5, help="Seconds to wait for each lookup."),
    json_out: bool = typer.Option(False, "--json", help="Print the family picture as JSON."),
    config: Path = ConfigOption,
    token: str = TokenOption,
) -> None:
    """Look up every person in the case under its context; print the family picture.

    Exit codes as for `mash lookup`: 0 every agency answered for everyone; 3 at least one
    cell is NOT CHECKED; 2 a bad case file (line and key named); 4 refused; 5 unreachable.
    """
    def go() -> FamilyPicture:
        try:
            case, requests = load_case(case_file)
        except CaseFileError as exc:  # every problem, one line each, naming line and key
            problems(exc.lines)
        with _client(config, token) as client:
            try:
                return run_case(client=client, case=case, requests=requests, timeout=timeout)
            except CaseLookupError as exc:
                fail(str(exc), GRPC_EXIT.get(exc.error.code(), FAILED))

    picture = guarded(go)
    if json_out:
        typer.echo(json.dumps(picture.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print_picture(picture)
    if picture.not_checked and not json_out:
        print(f"{picture.not_checked} cell(s) NOT CHECKED: treat them as unknown, not as "
              "'not known'.", file=sys.stderr)
    raise typer.Exit(PARTIAL if picture.not_checked else OK)
