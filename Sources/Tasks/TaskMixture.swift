import Models
import TensorCore

/// A mixture of tasks trained as one (multi-task training in T5's text-to-text framing, Raffel et
/// al. 2020): each example comes from one task, drawn with the example's generator, uniformly or
/// with the given weights; the task prefix token tells the model which task an example is. All
/// tasks must share one vocabulary (the symbolic tasks share `TaskVocabulary`); `size` is passed to
/// the drawn task as is (its own length knob: symbols, digits, pairs…), and `sequenceLength(size:)`
/// is the longest over the tasks. The name is the tasks' names joined by "+" ("copy+sparse").
public struct TaskMixture: SequenceTask {
    public let tasks: [any SequenceTask]
    /// Sampling probabilities, one per task, summing to 1.
    public let weights: [Double]

    /// `weights`: one non-negative finite weight per task, not all zero (nil: uniform).
    public init(_ tasks: [any SequenceTask], weights: [Double]? = nil) throws {
        try requireArgument(!tasks.isEmpty, "TaskMixture", "tasks", "[]", "at least one task")
        let vocabularies = tasks.map(\.vocabularySize), paddings = tasks.map(\.paddingToken)
        try requireArgument(Set(vocabularies).count == 1 && Set(paddings).count == 1, "TaskMixture", "tasks",
                            zip(tasks.map(\.name), vocabularies).map { "\($0) (vocabulary \($1))" }.joined(separator: ", "),
                            "tasks sharing one token layout (one vocabulary size and padding token)")
        let raw = weights ?? [Double](repeating: 1, count: tasks.count)
        try requireArgument(raw.count == tasks.count, "TaskMixture", "weights", raw, "one weight per task (\(tasks.count))")
        try requireArgument(raw.allSatisfy { $0 >= 0 && $0.isFinite } && raw.contains { $0 > 0 }, "TaskMixture", "weights", raw,
                            "non-negative finite weights, not all zero")
        let total = raw.reduce(0, +)
        self.tasks = tasks
        self.weights = raw.map { $0 / total }
    }

    public var name: String { tasks.map(\.name).joined(separator: "+") }
    public var vocabularySize: Int { tasks[0].vocabularySize }
    public var paddingToken: Int { tasks[0].paddingToken }
    public func sequenceLength(size: Int) -> Int { tasks.map { $0.sequenceLength(size: size) }.max() ?? 0 }
    public var minimumSize: Int { tasks.map(\.minimumSize).max() ?? 1 }
    public var evaluationTask: any SequenceTask {
        (try? TaskMixture(tasks.map(\.evaluationTask), weights: weights)) ?? self
    }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try tasks[sampleTaskIndex(generator: &generator)].example(size: size, generator: &generator)
    }

    /// The index of a task drawn with the weights (one draw from the generator).
    public func sampleTaskIndex(generator: inout SplitMix64) -> Int {
        let u = generator.nextDouble()
        var cumulative = 0.0
        for (i, w) in weights.enumerated() {
            cumulative += w
            if u < cumulative && w > 0 { return i }
        }
        return weights.lastIndex { $0 > 0 } ?? 0
    }
}
