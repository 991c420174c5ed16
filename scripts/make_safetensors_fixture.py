#!/usr/bin/env python3
"""safetensors interoperability between PositionLab and the Python reference implementation.

Without options: writes, with the `safetensors` package itself,

    Tests/ModelsTests/Fixtures/python.safetensors        a few small float32 tensors of known values
    Tests/ModelsTests/Fixtures/python_safetensors.json   each tensor's name, dtype, shape, data
                                                         offsets and values (row-major, flat), the
                                                         header's length and the __metadata__

so a Swift test can read the file and compare it with the JSON, value for value (every value is
exact in float32 and its JSON number rounds back to that float32).

    --verify PATH [--expect JSON]

reads a safetensors file written by PositionLab with `safetensors.safe_open` and
`safetensors.numpy.load_file`, prints the metadata and every tensor's name, dtype, shape and first
values, and exits non-zero if the file cannot be read (or, with --expect, if its tensors differ
from a JSON in the format above, e.g. when PositionLab rewrote python.safetensors). This is how we
show that Python reads PositionLab's files.

Run through scripts/make_safetensors_fixture.sh, which installs the pinned versions.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "ModelsTests" / "Fixtures"
FIXTURE = FIXTURES / "python.safetensors"
DESCRIPTION = FIXTURES / "python_safetensors.json"
PREVIEW = 8


def fixture_tensors() -> dict[str, np.ndarray]:
    """The tensors of python.safetensors: names with dots as PositionLab's checkpoints use them,
    ranks 1 to 3, values of either sign, non-dyadic ones (0.1, 1/3) to test exact bytes, and the
    largest and smallest normal float16-range magnitudes."""
    f32 = np.float32
    return {
        "embedding.weight": (np.arange(12, dtype=f32) / f32(4)).reshape(3, 4),
        "blocks.0.bias": np.array([-2, -1, 0, 1, 2], dtype=f32) * f32(0.5),
        "scalar_like": np.array([3.25], dtype=f32),
        "blocks.0.attention.cube": np.array(
            [[[1.0, -1.0], [0.1, -0.1]], [[1e-3, 65504.0], [-3.5, 1.0 / 3.0]]], dtype=f32),
    }


def read_header(path: Path) -> tuple[int, dict]:
    """The 8-byte little-endian header length and the parsed JSON header, read by hand."""
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        return length, json.loads(file.read(length))


def write_fixture() -> int:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    tensors = fixture_tensors()
    written_by = f"safetensors {safetensors.__version__}"
    metadata = {"format": "pt", "written_by": written_by}
    save_file(tensors, str(FIXTURE), metadata=metadata)

    header_length, header = read_header(FIXTURE)
    loaded = load_file(str(FIXTURE))
    entries = []
    for name, array in tensors.items():
        if not np.array_equal(loaded[name], array) or loaded[name].dtype != np.float32:
            raise SystemExit(f"{FIXTURE}: {name} did not read back as written")
        entries.append({
            "name": name,
            "dtype": header[name]["dtype"],
            "shape": list(array.shape),
            "data_offsets": header[name]["data_offsets"],
            # float32 → Python float is exact, and the shortest repr of that double parses back
            # to the same float32.
            "values": [float(v) for v in array.reshape(-1)],
        })
    description = {
        "file": FIXTURE.name,
        "written_by": written_by,
        "numpy_version": np.__version__,
        "header_length": header_length,
        "file_size": FIXTURE.stat().st_size,
        "metadata": header.get("__metadata__", {}),
        "tensors": entries,
    }
    DESCRIPTION.write_text(json.dumps(description, indent=2) + "\n")
    print(f"wrote {FIXTURE.relative_to(ROOT)} ({description['file_size']} bytes, {len(entries)} tensors, {written_by})")
    print(f"wrote {DESCRIPTION.relative_to(ROOT)}")
    return 0


def verify(path: Path, expect: Path | None) -> int:
    try:
        header_length, header = read_header(path)
        with safe_open(str(path), framework="np") as file:
            metadata = file.metadata()
            names = list(file.keys())
            tensors = {name: file.get_tensor(name) for name in names}
        everything = load_file(str(path))  # the whole-file reader as well
    except Exception as error:  # whatever the reader rejects, say what and fail
        print(f"cannot read {path} with safetensors {safetensors.__version__}: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1
    if sorted(everything) != sorted(names):
        print(f"{path}: safe_open and load_file disagree on the tensor names", file=sys.stderr)
        return 1

    print(f"{path}: read by safetensors {safetensors.__version__} (numpy {np.__version__}); "
          f"header {header_length} bytes, {len(names)} tensors")
    print(f"metadata: {json.dumps(metadata or {}, sort_keys=True)}")
    for name in names:
        array = tensors[name]
        flat = array.reshape(-1)
        head = ", ".join(f"{v:.6g}" for v in flat[:PREVIEW].tolist()) + (", …" if flat.size > PREVIEW else "")
        print(f"  {name}  {header[name]['dtype']} ({array.dtype})  {list(array.shape)}  [{head}]")

    if expect is None:
        return 0
    try:
        wanted = json.loads(expect.read_text())["tensors"]
    except (OSError, KeyError, json.JSONDecodeError) as error:
        print(f"cannot read the expected tensors from {expect}: {error}", file=sys.stderr)
        return 1
    problems = []
    for entry in wanted:
        name = entry["name"]
        if name not in tensors:
            problems.append(f"{name}: missing")
            continue
        array = tensors[name]
        if list(array.shape) != entry["shape"]:
            problems.append(f"{name}: shape {list(array.shape)}, expected {entry['shape']}")
        elif not np.array_equal(array.reshape(-1), np.array(entry["values"], dtype=array.dtype)):
            problems.append(f"{name}: values differ")
    extra = sorted(set(names) - {e["name"] for e in wanted})
    if extra:
        problems.append("unexpected tensors: " + ", ".join(extra))
    if problems:
        print(f"{path} differs from {expect}:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"matches {expect} exactly")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verify", type=Path, metavar="PATH",
                        help="read a safetensors file (one PositionLab wrote) instead of writing the fixture")
    parser.add_argument("--expect", type=Path, metavar="JSON",
                        help="with --verify: also require the tensors listed in this JSON (python_safetensors.json's format)")
    args = parser.parse_args(argv)
    if args.expect and not args.verify:
        parser.error("--expect goes with --verify")
    if args.verify:
        return verify(args.verify, args.expect)
    return write_fixture()


if __name__ == "__main__":
    sys.exit(main())
