#!/usr/bin/env python3
"""Compares `poslab bench train --json` with bench/torch_reference.py: prints a Markdown report
with one row per configuration (PositionLab tokens/s, PyTorch tokens/s, their ratio), the machine
(CPU model from /proc/cpuinfo, core count) and the versions each side reported.

    python bench/compare.py positionlab.json pytorch.json
    python bench/compare.py pl-1.json pt-1.json pl-2.json pt-2.json pl-3.json pt-3.json

Files come in pairs, one pair per round (the two sides measured one after the other); within a
pair they may be given in either order: each names its side in "implementation" ("positionlab"
or "pytorch"). With several rounds, each configuration's row gives each side's median and range,
the ratio of every round (each taken within its round, so that the machine's drift between
rounds cancels) and their median. Standard library only. Exits non-zero when a file is missing,
is not such a JSON object, the files do not pair up, or a pair shares no configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def side_details(data: dict) -> str:
    """Every top-level field but the configurations: versions, threads, whatever the side reports."""
    return ", ".join(f"{key} {value}" for key, value in data.items()
                     if key not in ("configurations", "implementation") and not isinstance(value, (dict, list)))


def shape_label(name: str, shape: dict) -> str:
    if all(k in shape for k in SHAPE_KEYS):
        return name + (f" (C={shape['model_dimension']}, L={shape['layers']}, H={shape['heads']}, "
                       f"T={shape['sequence_length']}, B={shape['batch_size']}, F={shape['feed_forward']})")
    return name


def spread(values: list[float], form) -> str:
    """The median, and with several values their range: "12,345 (11,900–12,800)"."""
    middle = form(statistics.median(values))
    return middle if len(values) == 1 else f"{middle} ({form(min(values))}–{form(max(values))})"


def report(rounds: list[tuple[dict, dict]]) -> str:
    """rounds: (positionlab, pytorch) per round, in the order they ran."""
    sides = [({c["name"]: c for c in a["configurations"]}, {c["name"]: c for c in b["configurations"]}) for a, b in rounds]
    for index, (ours, theirs) in enumerate(sides, 1):
        if not set(ours) & set(theirs):
            where = f" in round {index}" if len(rounds) > 1 else ""
            raise ReportError(f"no configuration in common{where} (PositionLab: {', '.join(sorted(ours)) or 'none'}; "
                              f"PyTorch: {', '.join(sorted(theirs)) or 'none'})")
    names: list[str] = []
    for ours, theirs in sides:
        for name in list(ours) + list(theirs):
            if name not in names:
                names.append(name)

    several = len(rounds) > 1
    lines = ["## Training throughput: PositionLab vs PyTorch (eager, CPU, float32)", ""]
    if several:
        lines.append(f"{len(rounds)} rounds, each measuring both sides one after the other. Tokens/s: median (range) "
                     "over the rounds; the ratio is taken within each round, and its median is the figure to quote.")
        lines.append("")
        lines.append("| configuration | PositionLab tokens/s | PyTorch tokens/s | ratio per round | median ratio |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
    else:
        lines.append("| configuration | PositionLab tokens/s | PyTorch tokens/s | ratio (PositionLab / PyTorch) |")
        lines.append("| --- | ---: | ---: | ---: |")
    notes = []
    rate = lambda value: f"{value:,.0f}"
    for name in names:
        pairs = [(ours.get(name), theirs.get(name)) for ours, theirs in sides]
        shape = next(entry for pair in pairs for entry in pair if entry)
        ours_rates = [a["tokens_per_second"] for a, _ in pairs if a]
        theirs_rates = [b["tokens_per_second"] for _, b in pairs if b]
        per_round = [a["tokens_per_second"] / b["tokens_per_second"]
                     if a and b and a["tokens_per_second"] > 0 and b["tokens_per_second"] > 0 else None for a, b in pairs]
        ratios = [r for r in per_round if r is not None]
        cells = [shape_label(name, shape), spread(ours_rates, rate) if ours_rates else "—",
                 spread(theirs_rates, rate) if theirs_rates else "—"]
        if several:
            cells += [" / ".join("—" if r is None else f"{r:.2f}×" for r in per_round),
                      f"**{statistics.median(ratios):.2f}×**" if ratios else "—"]
        else:
            cells.append(f"{ratios[0]:.2f}×" if ratios else "—")
        lines.append("| " + " | ".join(cells) + " |")
        for a, b in pairs:
            if a and b:
                differing = [k for k in SHAPE_KEYS + ("parameters",) if k in a and k in b and a[k] != b[k]]
                if differing:
                    notes.append(f"- **{name}: the two sides differ in " + ", ".join(
                        f"{k} ({a[k]} vs {b[k]})" for k in differing) + "** — not the same model.")
                    break
        for index, ((a, b), ratio) in enumerate(zip(pairs, per_round), 1):
            if ratio is None:
                what = ("measured by PositionLab only" if a and not b else "measured by PyTorch only" if b and not a
                        else "absent" if not a and not b else "a rate of zero")
                notes.append(f"- {name}" + (f", round {index}" if several else "") + f": {what}, not compared.")
    lines.append("")
    ms = []
    for name in names:
        ours_ms = [o[name]["ms_per_step"] for o, _ in sides if isinstance(o.get(name, {}).get("ms_per_step"), (int, float))]
        theirs_ms = [t[name]["ms_per_step"] for _, t in sides if isinstance(t.get(name, {}).get("ms_per_step"), (int, float))]
        if ours_ms and theirs_ms:
            ms.append(f"{name}: {statistics.median(ours_ms):.1f} ms vs {statistics.median(theirs_ms):.1f} ms")
    if ms:
        lines.append("Time per training step (PositionLab vs PyTorch" + (", medians" if several else "") + "): "
                     + "; ".join(ms) + ".")
        lines.append("")
    lines.append("A step is zero-grad, forward, backward, global-norm clipping and AdamW; each side times one warm-up "
                 "step, then takes the best of five single-step timings. Ratio above 1: PositionLab is faster.")
    lines.append("")
    if notes:
        lines += notes + [""]

    positionlab, pytorch = rounds[0]
    for side, index in (("PositionLab", 0), ("PyTorch", 1)):
        details = [side_details(pair[index]) for pair in rounds]
        if len(set(details)) > 1:
            lines.append(f"- **{side}'s details differ between rounds** (round 1's are below): "
                         + "; ".join(f"round {i}: {d or 'none'}" for i, d in enumerate(details, 1) if d != details[0]))
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
    parser.add_argument("files", nargs="+", metavar="file",
                        help="JSON of `poslab bench train --json` and of bench/torch_reference.py, one pair per round")
    args = parser.parse_args(argv)
    try:
        if len(args.files) % 2:
            raise ReportError(f"{len(args.files)} files given; they come in pairs, one PositionLab and one PyTorch "
                              "file per round")
        rounds = []
        for first, second in zip(args.files[::2], args.files[1::2]):
            sides = {}
            for path in (first, second):
                data = load(path)
                implementation = str(data.get("implementation", "")).lower()
                if implementation not in ("positionlab", "pytorch"):
                    raise ReportError(f"{path}: \"implementation\" is {data.get('implementation')!r}; "
                                      "expected \"positionlab\" or \"pytorch\"")
                if implementation in sides:
                    raise ReportError(f"{first} and {second} are both {implementation}'s (each round needs one of each)")
                sides[implementation] = data
            rounds.append((sides["positionlab"], sides["pytorch"]))
        print(report(rounds))
    except ReportError as error:
        print(f"compare.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
