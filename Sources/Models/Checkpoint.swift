import Foundation
import NN
import TensorCore

/// Checkpoints: one safetensors file holds everything a run needs to continue exactly —
/// the weights under their own names (so Python's `safetensors` and PyTorch read them as a
/// state dict), AdamW's moments under `optimizer.m.<name>` and `optimizer.v.<name>`, and in the
/// metadata the model configuration, the step, AdamW's update count and the data generator's
/// state. One file, written atomically: a run killed at any moment keeps its last checkpoint.
public enum Checkpoint {
    public static let fileName = "checkpoint.safetensors"

    public enum Key {
        public static let configuration = "positionlab.configuration"
        public static let step = "positionlab.step"
        public static let optimizerSteps = "positionlab.optimizer_steps"
        public static let dataGenerator = "positionlab.data_generator_state"
    }

    public struct LoadError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }

        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }
}

extension Transformer {
    /// A model built from a checkpoint's configuration and weights.
    public static func load(from url: URL) throws -> Transformer {
        let file = try SafeTensors.read(url)
        guard let text = file.metadata[Checkpoint.Key.configuration] else {
            throw Checkpoint.LoadError(path: url.path, reason: "no \(Checkpoint.Key.configuration) in the metadata: not a PositionLab checkpoint")
        }
        let configuration = try JSONDecoder().decode(TransformerConfiguration.self, from: Data(text.utf8))
        // `loadWeights` sets every parameter or throws: nothing drawn would survive.
        let model = try Initialization.skippingDraws { try Transformer(configuration: configuration, seed: 0) }
        try model.loadWeights(file.tensors, path: url.path)
        return model
    }

    /// Copies every parameter from `tensors` by name; a missing name or a different shape is an error.
    public func loadWeights(_ tensors: [String: Tensor], path: String = "<tensors>") throws {
        for (name, parameter) in namedParameters {
            guard let value = tensors[name] else { throw Checkpoint.LoadError(path: path, reason: "missing tensor \"\(name)\"") }
            guard value.shape == parameter.shape else {
                throw Checkpoint.LoadError(path: path, reason: "tensor \"\(name)\" is \(value.shape), the model needs \(parameter.shape)")
            }
            try parameter.assign(from: value)
        }
    }
}

extension Trainer {
    /// Writes the model, optimiser and progress to `url` atomically; `metadata` adds entries.
    public func saveCheckpoint(to url: URL, metadata: [String: String] = [:]) throws {
        let names = model.namedParameters
        var tensors = names
        for (index, (name, parameter)) in names.enumerated() {
            tensors.append(("optimizer.m.\(name)", Tensor(shape: parameter.shape, storage: optimizer.firstMoments[index])))
            tensors.append(("optimizer.v.\(name)", Tensor(shape: parameter.shape, storage: optimizer.secondMoments[index])))
        }
        var all = metadata
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        all[Checkpoint.Key.configuration] = String(decoding: try encoder.encode(model.configuration), as: UTF8.self)
        all[Checkpoint.Key.step] = String(step)
        all[Checkpoint.Key.optimizerSteps] = String(optimizer.stepCount)
        all[Checkpoint.Key.dataGenerator] = String(dataGenerator.state)
        all["format"] = "pt"  // what Python's safetensors expects of a PyTorch state dict
        try SafeTensors.write(tensors, metadata: all, to: url)
    }

    /// Restores weights, optimiser moments and progress from a checkpoint of this same model.
    public func restoreCheckpoint(from url: URL) throws {
        let file = try SafeTensors.read(url)
        func number(_ key: String) throws -> UInt64 {
            guard let text = file.metadata[key], let value = UInt64(text) else {
                throw Checkpoint.LoadError(path: url.path, reason: "metadata \(key) is missing or not a number")
            }
            return value
        }
        if let text = file.metadata[Checkpoint.Key.configuration],
           try JSONDecoder().decode(TransformerConfiguration.self, from: Data(text.utf8)) != model.configuration {
            throw Checkpoint.LoadError(path: url.path, reason: "the checkpoint's model configuration differs from this run's")
        }
        try model.loadWeights(file.tensors, path: url.path)
        for (index, (name, parameter)) in model.namedParameters.enumerated() {
            for (prefix, storage) in [("optimizer.m.", optimizer.firstMoments[index]), ("optimizer.v.", optimizer.secondMoments[index])] {
                guard let value = file.tensors[prefix + name], value.count == parameter.count else {
                    throw Checkpoint.LoadError(path: url.path, reason: "missing or misshapen optimiser state \"\(prefix + name)\"")
                }
                storage.pointer.update(from: value.storage.pointer, count: value.count)
            }
        }
        step = Int(try number(Checkpoint.Key.step))
        optimizer.stepCount = Int(try number(Checkpoint.Key.optimizerSteps))
        dataGenerator = SplitMix64(seed: try number(Checkpoint.Key.dataGenerator))
    }
}
