#!/usr/bin/env bash
# PositionLab as a versioned dependency: clones this repository's HEAD, tags the clone 1.0.0, and
# builds and runs a throwaway package that depends on it by URL (`from: "1.0.0"`) and calls the
# library. SwiftPM refuses a dependency by version whose manifest has unsafeFlags, so this fails if
# Package.swift ever grows them again.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/poslab-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone --quiet --no-hardlinks . "$work/PositionLab"
git -C "$work/PositionLab" -c user.name=consumer -c user.email=consumer@example.invalid tag -a 1.0.0 -m "consumer test"
mkdir -p "$work/Consumer/Sources/Consumer"
cat > "$work/Consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    dependencies: [.package(url: "file://$work/PositionLab", from: "1.0.0")],
    targets: [.executableTarget(name: "Consumer", dependencies: [.product(name: "PositionLab", package: "PositionLab")])]
)
SWIFT
cat > "$work/Consumer/Sources/Consumer/main.swift" <<'SWIFT'
import Models
import PositionalEncodings

// A model with a scheme given as text, as `poslab --pe` takes it; its logits for one sequence.
let scheme = try SchemeSpecification(parsing: #"rope{"rope_theta": 500}"#)
    .resolved(trainingLength: 16, maximumLength: 64, modelDimension: 32)
let configuration = try TransformerConfiguration(vocabularySize: 10, modelDimension: 32, numberOfLayers: 1, numberOfHeads: 2,
                                                 positionalScheme: scheme)
let model = try Transformer(configuration: configuration, seed: 1)
let logits = try model.logits([1, 2, 3, 4, 5, 6], batchSize: 1, length: 6)
precondition(logits.shape == [1, 6, 10] && logits.scalars.allSatisfy(\.isFinite))
print("consumer: logits \(logits.shape), finite")
SWIFT
echo "== building a package that depends on PositionLab 1.0.0 (file://$work/PositionLab)" >&2
swift build --package-path "$work/Consumer" -c release 2>&1 | tail -n 3 >&2
"$work/Consumer/.build/release/Consumer"
