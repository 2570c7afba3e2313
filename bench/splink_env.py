"""The Splink environment of the benchmark, and running the Splink peer in it.

Splink is the peer ``bench.accuracy`` compares the MASH matcher with; it belongs to the
benchmark, never to the runtime, so it lives in a virtual environment of its own and the
peer (``bench/splink_peer.py``) runs there in a subprocess, reading a split written by
``Split.write`` and writing its results as JSON. The interpreter is, in order:

1. the one given explicitly (``--splink-python``, or the ``python`` argument);
2. the environment variable ``MASH_BENCH_SPLINK_PYTHON``;
3. ``var/bench/splink-venv`` under the repository, created on first use with
   ``python -m venv`` and ``pip install 'splink>=5,<6'``.

    python -m bench.splink_env                       # ensure it, print its version
    python -m bench.splink_env --split S.json --out R.json [--fields names,dob]

Standard library only: this module runs in the project's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / "var" / "bench" / "splink-venv"
PEER = Path(__file__).resolve().parent / "splink_peer.py"
ENV_VAR = "MASH_BENCH_SPLINK_PYTHON"
REQUIREMENT = "splink>=5,<6"
_MAJOR = 5


class SplinkError(RuntimeError):
    """Splink could not be set up or failed on a split; the message says which and why."""


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


_CHECKED: dict[Path, str] = {}


def _check(python: Path) -> str:
    """Splink's version under ``python``; SplinkError when it is not Splink 5."""
    if python in _CHECKED:
        return _CHECKED[python]
    try:
        done = subprocess.run(
            [str(python), "-c", "import splink; print(splink.__version__)"],
            capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SplinkError(f"cannot run the Splink interpreter {python}: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SplinkError(f"{python} cannot import splink: {last}")
    version = done.stdout.strip()
    if version.split(".")[0] != str(_MAJOR):
        raise SplinkError(f"{python} has Splink {version}; the peer needs {REQUIREMENT}")
    _CHECKED[python] = version
    return version


def _create(venv: Path) -> None:
    print(f"bench: creating the Splink environment {venv} (pip install '{REQUIREMENT}')",
          file=sys.stderr)
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(_venv_python(venv)), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", REQUIREMENT]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SplinkError(f"cannot create the Splink environment {venv} "
                              f"({' '.join(step[1:4])}...): {last}")


def splink_python(python: str | os.PathLike[str] | None = None, *,
                  create: bool = True) -> Path:
    """The interpreter that runs the peer: explicit, else $MASH_BENCH_SPLINK_PYTHON, else
    the repository's own environment (created when missing, unless ``create`` is False).
    Checked to import Splink 5."""
    chosen = python or os.environ.get(ENV_VAR) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.exists():
            source = "--splink-python" if python else ENV_VAR
            raise SplinkError(f"{source}: no interpreter at {path}")
        _check(path)
        return path
    path = _venv_python(DEFAULT_VENV)
    if not path.exists():
        if not create:
            raise SplinkError(f"no Splink environment at {DEFAULT_VENV}")
        _create(DEFAULT_VENV)
    _check(path)
    return path


def splink_version(python: str | os.PathLike[str] | None = None) -> str:
    return _check(splink_python(python))


def run_splink(split_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
               python: str | os.PathLike[str] | None = None, *,
               fields: Sequence[str] | None = None, threads: int = 1,
               timeout: float | None = None) -> dict[str, Any]:
    """Run the Splink peer on a split file and return its parsed results (also written to
    ``out_path``). SplinkError, with the peer's own one-line reason, when it fails."""
    interpreter = splink_python(python)
    command = [str(interpreter), str(PEER), "--split", str(split_path), "--out",
               str(out_path), "--threads", str(threads)]
    if fields:
        command += ["--fields", ",".join(fields)]
    name = Path(split_path).name
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise SplinkError(f"Splink on {name} took longer than {timeout} s") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = next((line.split("error:", 1)[1].strip() for line in reversed(lines)
                       if line.startswith("splink_peer: error:")),
                      lines[-1] if lines else f"exit status {done.returncode}")
        raise SplinkError(f"Splink on {name}: {reason}")
    try:
        result: dict[str, Any] = json.loads(Path(out_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SplinkError(f"Splink on {name} wrote no readable results: {exc}") from exc
    training = result.get("training") or {}
    for failed in training.get("failed_configurations") or []:
        # Never silent: the results say so too (training.configuration).
        print(f"bench: Splink on {name}: configuration {failed['configuration']!r} failed "
              f"({failed['error']}); trained with {training.get('configuration')!r}",
              file=sys.stderr)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The option that names the Splink interpreter, for benchmark commands."""
    parser.add_argument("--splink-python", default=None, metavar="PYTHON",
                        help=f"Python with {REQUIREMENT} for the Splink peer (default "
                             f"${ENV_VAR}, else {DEFAULT_VENV.relative_to(ROOT)}, "
                             "created on first use)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.splink_env",
                                     description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.add_argument("--split", type=Path, help="a split JSON to run the peer on")
    parser.add_argument("--out", type=Path, help="where to write the peer's results")
    parser.add_argument("--fields", default=None, help="field groups, comma-separated")
    args = parser.parse_args(argv)
    try:
        if args.split is None:
            python = splink_python(args.splink_python)
            print(f"{python}: Splink {_check(python)}")
            return 0
        if args.out is None:
            parser.error("--split needs --out")
        fields = [f for f in (args.fields or "").split(",") if f] or None
        result = run_splink(args.split, args.out, args.splink_python, fields=fields)
    except SplinkError as exc:
        print(f"mash: error: {exc}", file=sys.stderr)
        return 2
    blocking = result["blocking"]
    print(f"{result['split']}: Splink {result['splink_version']}, {result['records']} "
          f"records, {len(result['queries'])} queries, {result['pairs']} pairs, blocking "
          f"reaches {blocking['reached']}/{blocking['held']} held, training "
          f"{result['training_seconds']:.1f} s ({result['training']['configuration']} "
          f"configuration), {result['seconds_per_query'] * 1000:.2f} ms/query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
