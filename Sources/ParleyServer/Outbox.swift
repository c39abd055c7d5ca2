import NIOCore
import Synchronization

/// One connection's bounded outbound queue: any task offers frames without waiting, the connection's writer
/// takes them in batches.
///
/// This is what keeps one slow reader from stalling or bloating everyone else: `offer` never suspends, and when
/// the queued bytes would pass `limitBytes` the outbox drops everything and ends, which closes that
/// connection alone (ergo's "SendQ exceeded").
final class Outbox: Sendable {
    enum Phase: Sendable, Equatable {
        case open
        /// No more frames are accepted; the writer sends what is left, then ends.
        case finishing
        /// The reader fell too far behind; what was queued is dropped.
        case overflowed
        case done
    }

    private typealias Waiter = CheckedContinuation<[ByteBuffer]?, Never>

    private struct State {
        var phase = Phase.open
        var frames: [ByteBuffer] = []
        var bytes = 0
        /// The writer, when it waits for a frame.
        var waiter: Waiter?

        /// What the writer gets now: a batch, nil for "ended", or `.none` when it must wait.
        mutating func take() -> [ByteBuffer]?? {
            switch phase {
            case .open where frames.isEmpty:
                return .none
            case .open, .finishing:
                defer {
                    frames = []
                    bytes = 0
                    if phase == .finishing { phase = .done }
                }
                return .some(frames)
            case .overflowed, .done:
                return .some(nil)
            }
        }

        /// Hands the waiting writer whatever `take()` gives now, if it can be given.
        mutating func wakeWriter() -> (Waiter, [ByteBuffer]?)? {
            guard let waiter, let batch = take() else { return nil }
            self.waiter = nil
            return (waiter, batch)
        }
    }

    let limitBytes: Int
    private let state = Mutex(State())
    private let onEnd: @Sendable (Ending) -> Void

    /// How the outbox stopped accepting frames.
    enum Ending: Sendable, Equatable {
        case overflowed
        /// Finished; what is queued may take up to `drainingFor` (nil: the connection's default) to go out.
        case finished(drainingFor: Duration?)
    }

    /// `onEnd` is called once, outside the lock, when the outbox stops accepting frames. The writer may be
    /// stuck in a write to a socket nobody reads, where no wake-up reaches it, so the connection uses this to
    /// close the channel itself.
    init(limitBytes: Int, onEnd: @escaping @Sendable (Ending) -> Void = { _ in }) {
        self.limitBytes = limitBytes
        self.onEnd = onEnd
    }

    var phase: Phase { state.withLock { $0.phase } }

    /// Queues a frame; never waits. Past the limit the outbox overflows and reports it through `onEnd`.
    func offer(_ frame: ByteBuffer) {
        let (overflowed, wakeUp) = state.withLock { state -> (Bool, (Waiter, [ByteBuffer]?)?) in
            switch state.phase {
            // A frame larger than the whole limit still goes into an empty queue: a long reply is not a
            // slow reader.
            case .open where state.bytes > 0 && state.bytes + frame.readableBytes > limitBytes:
                state.phase = .overflowed
                state.frames = []
                state.bytes = 0
                return (true, state.wakeWriter())
            case .open:
                state.frames.append(frame)
                state.bytes += frame.readableBytes
                return (false, state.wakeWriter())
            case .overflowed, .finishing, .done:
                return (false, nil)  // ended: the frame is dropped
            }
        }
        if let (waiter, batch) = wakeUp { waiter.resume(returning: batch) }
        if overflowed { onEnd(.overflowed) }
    }

    /// Accepts no more frames; the writer sends what is queued, then `nextBatch` returns nil.
    func finish(drainingFor deadline: Duration? = nil) {
        let (ended, wakeUp) = state.withLock { state -> (Bool, (Waiter, [ByteBuffer]?)?) in
            guard state.phase == .open else { return (false, nil) }
            state.phase = state.frames.isEmpty ? .done : .finishing
            return (true, state.wakeWriter())
        }
        if let (waiter, batch) = wakeUp { waiter.resume(returning: batch) }
        if ended { onEnd(.finished(drainingFor: deadline)) }
    }

    /// Waits for at least one frame and returns everything queued, or nil when the outbox has ended or the
    /// task is cancelled. Only the connection's writer calls this, so there is at most one waiter.
    func nextBatch() async -> [ByteBuffer]? {
        if let ready = state.withLock({ $0.take() }) { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> [ByteBuffer]?? in
                    if Task.isCancelled { return .some(nil) }
                    if let ready = state.take() { return ready }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
