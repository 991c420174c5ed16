// swift-tools-version:6.0
import PackageDescription

/// PositionLab: positional encodings for Transformers, on a CPU engine of our own.
///
/// Modules depend one way only:
/// CKernels (AVX2 element-wise loops, small products) ← TensorCore (tensors, kernels, autograd) ← NN (layers, optimisers) ← PositionalEncodings ← Models ← Tasks ← Lab ← poslab (CLI);
/// Interop (transformers folders, tokenizers) sits beside Lab on Models and Tasks.

let package = Package(
    name: "PositionLab",
    products: [
        .library(name: "PositionLab", targets: ["TensorCore", "NN", "PositionalEncodings", "Models", "Tasks", "Lab", "Interop"]),
        .executable(name: "poslab", targets: ["poslab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS (Debian's libopenblas0) is loaded at run time, after choosing its kernels: see BLAS.swift.
        // AVX2/FMA element-wise kernels in C, each with a target attribute (no compiler flags); chosen at run time.
        .target(name: "CKernels"),
        .target(name: "TensorCore", dependencies: ["CKernels"]),
        .target(name: "NN", dependencies: ["TensorCore"]),
        .target(name: "PositionalEncodings", dependencies: ["TensorCore", "NN"]),
        .target(name: "Models", dependencies: ["TensorCore", "NN", "PositionalEncodings"]),
        .target(name: "Tasks", dependencies: ["TensorCore", "PositionalEncodings", "Models"]),
        .target(name: "Lab", dependencies: ["TensorCore", "NN", "PositionalEncodings", "Models", "Tasks"]),
        .target(name: "Interop", dependencies: ["TensorCore", "NN", "PositionalEncodings", "Models", "Tasks"]),
        .executableTarget(
            name: "poslab",
            dependencies: [
                "TensorCore", "NN", "PositionalEncodings", "Models", "Tasks", "Lab", "Interop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "NNTests", dependencies: ["TensorCore", "NN"]),
        .testTarget(name: "PositionalEncodingsTests", dependencies: ["TensorCore", "NN", "PositionalEncodings"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "ModelsTests", dependencies: ["TensorCore", "NN", "PositionalEncodings", "Models", "Tasks"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "TasksTests", dependencies: ["TensorCore", "Models", "Tasks"]),
        .testTarget(name: "LabTests", dependencies: ["TensorCore", "Models", "Tasks", "Lab"]),
        .testTarget(name: "InteropTests", dependencies: ["TensorCore", "NN", "PositionalEncodings", "Models", "Tasks", "Interop"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "poslabTests", dependencies: ["poslab"]),
    ],
    swiftLanguageModes: [.v6]
)
