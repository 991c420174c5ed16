import CKernels
import Foundation
import Synchronization
import XCTest
import TensorCore

/// `ck_parallel_run`, the pool behind `Parallel.perform`: every iteration once per region, regions back
/// to back and from two threads at once, the workers taking part, and nested, concurrent or shared-core
/// regions on their caller. The tests ask for at least one worker, so that the pool runs (and is tested)
/// on a one-core machine too; the process's first call sizes it.
final class WorkerPoolTests: XCTestCase {
    private final class Work: @unchecked Sendable {
        let body: (Int) -> Void
        init(_ body: @escaping (Int) -> Void) { self.body = body }
    }

    private static func run(_ iterations: Int, workers: Int32 = Int32(max(1, Parallel.coreCount - 1)), _ body: @escaping (Int) -> Void) {
        let work = Unmanaged.passRetained(Work(body))
        defer { work.release() }
        ck_parallel_run(iterations, workers, { context, iteration in
            Unmanaged<Work>.fromOpaque(context!).takeUnretainedValue().body(iteration)
        }, work.toOpaque())
    }

    private final class Started: Sendable {
        let first = Atomic<UInt>(0), second = Atomic<UInt>(0)
    }

    private static var thread: UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(bitPattern: pthread_self()))) }

    func testEveryIterationRunsOnceInEveryRegion() {
        let sizes = [2, 3, 5, 17, 64]
        let regions = 3000
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: regions * 64)
        counts.initialize(repeating: 0, count: regions * 64)
        defer { counts.deallocate() }
        for region in 0..<regions {
            let size = sizes[region % sizes.count]
            Self.run(size) { counts[region * 64 + $0] += 1 }
        }
        for region in 0..<regions {
            let size = sizes[region % sizes.count]
            for i in 0..<64 where counts[region * 64 + i] != (i < size ? 1 : 0) {
                return XCTFail("region \(region) iteration \(i) ran \(counts[region * 64 + i]) times")
            }
        }
    }

    /// The threads that ran a region of two iterations in which iteration 0 waits (up to 10 s) for
    /// iteration 1 to start: only a second thread can start it while the first waits.
    private static func waitingRegion() -> (first: UInt, second: UInt) {
        let started = Started()
        run(2) { iteration in
            if iteration == 1 { return started.second.store(WorkerPoolTests.thread, ordering: .releasing) }
            started.first.store(WorkerPoolTests.thread, ordering: .releasing)
            let deadline = Date().addingTimeInterval(10)
            while started.second.load(ordering: .acquiring) == 0, Date() < deadline { sched_yield() }
        }
        return (started.first.load(ordering: .acquiring), started.second.load(ordering: .acquiring))
    }

    /// Runs `body` in `sharingCores` while another thread is in it too.
    private static func besideAnotherSharer<Result>(_ body: () -> Result) -> Result {
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let other = Thread { Parallel.sharingCores { entered.signal(); release.wait() } }
        other.start()
        entered.wait()
        defer { release.signal() }
        return Parallel.sharingCores(body)
    }

    func testAWorkerRunsAnIterationWhileTheCallerRunsAnother() {
        let (first, second) = Self.waitingRegion()
        XCTAssertNotEqual(second, 0, "no worker took the second iteration while the first waited")
        XCTAssertNotEqual(first, second)
    }

    func testNestedRegionsRunOnTheirCallerInOrder() {
        let log = UnsafeMutablePointer<(outer: Int, inner: Int, thread: UInt)>.allocate(capacity: 2 * 8)
        defer { log.deallocate() }
        let outerThreads = UnsafeMutablePointer<UInt>.allocate(capacity: 2)
        defer { outerThreads.deallocate() }
        Self.run(2) { outer in
            outerThreads[outer] = WorkerPoolTests.thread
            var step = 0
            Self.run(8) { inner in
                log[outer * 8 + step] = (outer, inner, WorkerPoolTests.thread)
                step += 1
            }
        }
        for outer in 0..<2 {
            for step in 0..<8 {
                let entry = log[outer * 8 + step]
                XCTAssertEqual(entry.inner, step, "nested iterations in order")
                XCTAssertEqual(entry.thread, outerThreads[outer], "a nested region runs on its caller")
            }
        }
    }

    func testRegionsFromTwoThreadsAtOnceEachRunEveryIterationOnce() {
        let regions = 2000, size = 4
        struct Counts: @unchecked Sendable { let pointer: UnsafeMutablePointer<Int> }
        let counts = Counts(pointer: .allocate(capacity: 2 * regions * size))
        counts.pointer.initialize(repeating: 0, count: 2 * regions * size)
        defer { counts.pointer.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for region in 0..<regions {
                Self.run(size) { counts.pointer[(caller * regions + region) * size + $0] += 1 }
            }
        }
        XCTAssertEqual((0..<(2 * regions * size)).filter { counts.pointer[$0] != 1 }.count, 0)
    }

    func testAThreadSharingTheCoresUsesThePoolOnlyWhenAlone() {
        // Alone in sharingCores: a worker takes part.
        let alone = Parallel.sharingCores { Self.waitingRegion() }
        XCTAssertNotEqual(alone.first, alone.second)
        // Beside another thread in sharingCores: its regions run on it, in order.
        let caller = WorkerPoolTests.thread
        var order: [Int] = []
        var threads: Set<UInt> = []
        Self.besideAnotherSharer { Self.run(6) { order.append($0); threads.insert(WorkerPoolTests.thread) } }
        XCTAssertEqual(order, Array(0..<6))
        XCTAssertEqual(threads, [caller])
        // Both gone, a region uses the pool again.
        let after = Self.waitingRegion()
        XCTAssertNotEqual(after.first, after.second, "leaving sharingCores restores the thread's regions")
        // The same reduction on the pool and on one thread: the chunks, not the threads, fix the result.
        let x = Random.floats(5 * Parallel.minimumElementsPerChunk + 3, seed: 31)
        if Parallel.coreCount > 1 { XCTAssertGreaterThan(Parallel.chunkCount(for: x.count), 1) }
        let parallel = Kernels.sum(x, count: x.count)
        let serial = Self.besideAnotherSharer { Kernels.sum(x, count: x.count) }
        XCTAssertEqual(parallel.bitPattern, serial.bitPattern)
    }

    func testOneIterationAndNoWorkersRunOnTheCaller() {
        let caller = WorkerPoolTests.thread
        var seen: [UInt] = []
        Self.run(1) { _ in seen.append(WorkerPoolTests.thread) }
        Self.run(3, workers: 0) { _ in seen.append(WorkerPoolTests.thread) }
        Self.run(0) { _ in seen.append(0) }
        XCTAssertEqual(seen, [caller, caller, caller, caller])
    }
}
