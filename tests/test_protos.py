"""The committed stubs in mash/v1 are exactly what protoc generates from protos/."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_stubs_are_not_stale(tmp_path: Path) -> None:
    protos = sorted((ROOT / "protos" / "mash" / "v1").glob("*.proto"))
    assert protos
    # mypy-protobuf's plugin, installed beside this interpreter, writes the *_pb2_grpc.pyi
    mypy_grpc = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    assert mypy_grpc.exists(), "mypy-protobuf is not installed: `make venv` installs it"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"),
         f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}",
         f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}", f"--mypy_grpc_out={tmp_path}",
         *map(str, protos)],
        check=True,
    )
    generated = sorted(p.name for p in (tmp_path / "mash" / "v1").iterdir())
    committed = sorted(p.name for p in (ROOT / "mash" / "v1").iterdir()
                       if p.name != "__init__.py" and p.suffix in (".py", ".pyi"))
    assert generated == committed, "stubs added or removed: run `make protos`"
    stale = [name for name in generated if not filecmp.cmp(
        tmp_path / "mash" / "v1" / name, ROOT / "mash" / "v1" / name, shallow=False)]
    assert not stale, f"stale stubs {stale}: run `make protos` and commit mash/v1"


def test_buf_lint_passes_when_buf_is_installed() -> None:
    buf = ROOT / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        buf_path = shutil.which("buf")
        assert buf_path, "buf is not installed: `make test` installs it with npm"
        buf = Path(buf_path)
    result = subprocess.run([str(buf), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
