#!/usr/bin/env python3
"""Compares `poslab bench train --json` with bench/torch_reference.py: prints a Markdown report
with one row per configuration (PositionLab tokens/s, PyTorch tokens/s, their ratio), the machine
(CPU model from /proc/cpuinfo, core count) and the versions each side reported.

    python bench/compare.py positionlab.json pytorch.json

The two files may be given in either order: each names its side in "implementation"
("positionlab" or "pytorch"). Standard library only. Exits non-zero when a file is missing,
is not such a JSON object, or the two share no configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

SHAPE_KEYS = ("model_dimension", "layers", "heads", "sequence_length", "batch_size", "feed_forward")


class ReportError(Exception):
    pass


def load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror or error}") from error
    except json.JSONDecodeError as error:
        raise ReportError(f"{path} is not JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("configurations"), list):
        raise ReportError(f"{path}: expected an object with a \"configurations\" list")
    for index, entry in enumerate(data["configurations"]):
        if not isinstance(entry, dict) or "name" not in entry or not isinstance(entry.get("tokens_per_second"), (int, float)):
            raise ReportError(f"{path}: configuration {index} needs a \"name\" and a numeric \"tokens_per_second\"")
    return data


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 0


def command_output(arguments: list[str]) -> str | None:
    try:
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0].strip() if result.returncode == 0 and first else None


def format_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def side_details(data: dict) -> str:
    """Every top-level field but the configurations: versions, threads, whatever the side reports."""
    return ", ".join(f"{key} {value}" for key, value in data.items()
                     if key not in ("configurations", "implementation") and not isinstance(value, (dict, list)))


def report(positionlab: dict, pytorch: dict) -> str:
    ours = {c["name"]: c for c in positionlab["configurations"]}
    theirs = {c["name"]: c for c in pytorch["configurations"]}
    names = list(ours) + [n for n in theirs if n not in ours]
    if not set(ours) & set(theirs):
        raise ReportError(f"no configuration in common (PositionLab: {', '.join(ours) or 'none'}; "
                          f"PyTorch: {', '.join(theirs) or 'none'})")

    lines = ["## Training throughput: PositionLab vs PyTorch (eager, CPU, float32)", ""]
    lines.append("| configuration | PositionLab tokens/s | PyTorch tokens/s | ratio (PositionLab / PyTorch) |")
    lines.append("| --- | ---: | ---: | ---: |")
    notes = []
    for name in names:
        a, b = ours.get(name), theirs.get(name)
        shape = a or b
        label = name
        if all(k in shape for k in SHAPE_KEYS):
            label += (f" (C={shape['model_dimension']}, L={shape['layers']}, H={shape['heads']}, "
                      f"T={shape['sequence_length']}, B={shape['batch_size']}, F={shape['feed_forward']})")
        rate_a = a["tokens_per_second"] if a else None
        rate_b = b["tokens_per_second"] if b else None
        ratio = f"{rate_a / rate_b:.2f}×" if rate_a and rate_b else "—"
        lines.append(f"| {label} | {format_rate(rate_a)} | {format_rate(rate_b)} | {ratio} |")
        if a and b:
            differing = [k for k in SHAPE_KEYS + ("parameters",) if k in a and k in b and a[k] != b[k]]
            if differing:
                notes.append(f"- **{name}: the two sides differ in " + ", ".join(
                    f"{k} ({a[k]} vs {b[k]})" for k in differing) + "** — not the same model.")
        else:
            notes.append(f"- {name}: measured by {'PositionLab' if a else 'PyTorch'} only.")
    lines.append("")
    ms = [f"{n}: {ours[n]['ms_per_step']:.1f} ms vs {theirs[n]['ms_per_step']:.1f} ms"
          for n in names if n in ours and n in theirs
          and isinstance(ours[n].get("ms_per_step"), (int, float)) and isinstance(theirs[n].get("ms_per_step"), (int, float))]
    if ms:
        lines.append("Time per training step (PositionLab vs PyTorch): " + "; ".join(ms) + ".")
        lines.append("")
    lines.append("A step is zero-grad, forward, backward, global-norm clipping and AdamW; each side times one warm-up "
                 "step, then takes the best of five single-step timings. Ratio above 1: PositionLab is faster.")
    lines.append("")
    if notes:
        lines += notes + [""]

    lines.append(f"- Machine: {cpu_model()}, {core_count()} cores available ({os.cpu_count()} online), "
                 f"{platform.system()} {platform.release()}")
    lines.append(f"- PositionLab: {side_details(positionlab) or 'no details reported'}")
    lines.append(f"- PyTorch: {side_details(pytorch) or 'no details reported'}")
    toolchain = [f"Python {platform.python_version()}"]
    swift = command_output(["swift", "--version"])
    if swift:
        toolchain.append(swift)
    commit = command_output(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"])
    if commit:
        toolchain.append(f"PositionLab commit {commit}")
    lines.append(f"- Toolchain: {'; '.join(toolchain)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Markdown comparison of PositionLab's and PyTorch's training throughput.")
    parser.add_argument("first", help="JSON of `poslab bench train --json` (or of torch_reference.py)")
    parser.add_argument("second", help="JSON of bench/torch_reference.py (or of poslab)")
    args = parser.parse_args(argv)
    try:
        sides = {}
        for path in (args.first, args.second):
            data = load(path)
            implementation = str(data.get("implementation", "")).lower()
            if implementation not in ("positionlab", "pytorch"):
                raise ReportError(f"{path}: \"implementation\" is {data.get('implementation')!r}; "
                                  "expected \"positionlab\" or \"pytorch\"")
            if implementation in sides:
                raise ReportError(f"both files are {implementation}'s")
            sides[implementation] = data
        print(report(sides["positionlab"], sides["pytorch"]))
    except ReportError as error:
        print(f"compare.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
