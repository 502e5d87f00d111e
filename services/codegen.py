"""Compile protos/linkpulse/v1/*.proto into services/_generated (run by `make protos`)."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
OUT_DIR = Path(__file__).resolve().parent / "_generated"
# Descriptor set with source info: the proto comments, for the OpenAPI document.
DESCRIPTOR_SET = OUT_DIR / "linkpulse.desc"


def _googleapis_include() -> Path:
    """Directory holding google/api/*.proto as shipped by googleapis-common-protos."""
    import google.api

    return Path(next(iter(google.api.__path__))).parent.parent


def generate() -> int:
    """Run protoc with the grpc plugin over every proto file; return protoc's exit status."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.glob("linkpulse/**/*.proto"))
    well_known = Path(next(iter(grpc_tools.__path__))) / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{_googleapis_include()}",
        f"-I{well_known}",
        f"--python_out={OUT_DIR}",
        f"--pyi_out={OUT_DIR}",
        f"--grpc_python_out={OUT_DIR}",
        f"--descriptor_set_out={DESCRIPTOR_SET}",
        "--include_source_info",
        "--include_imports",
        *protos,
    ]
    return protoc.main(args)


if __name__ == "__main__":
    sys.exit(generate())
