import NIOCore
import Synchronization

/// The outboxes one batch of fan-outs offered frames to, grouped by event loop, so that one task per loop
/// drains them all.
struct Drains {
    /// How much one connection may be sent before its drain is requested even in the middle of a batch: a
    /// batch can hold thousands of messages, far more than a send queue.
    static let bytesPerRequest = 16 * 1024

    fileprivate var loops: [(loop: any EventLoop, outboxes: [Outbox])] = []
    /// The most any one connection was offered since the last request (at most the sum of every event's
    /// largest frame).
    fileprivate var bytesSinceRequest = 0

    /// Queues `frame` for `outbox`; false when the outbox dropped it (its connection overflowed or is ending).
    @discardableResult
    mutating func offer(_ frame: ByteBuffer, to outbox: Outbox) -> Bool {
        let offered = outbox.offer(frame)
        guard offered == .needsDrain else { return offered != .dropped }
        let loop = outbox.eventLoop
        // A handful of loops (one per core): a linear search beats hashing.
        if let index = loops.firstIndex(where: { $0.loop === loop }) {
            loops[index].outboxes.append(outbox)
        } else {
            loops.append((loop, [outbox]))
        }
        return true
    }

    /// One event was offered, in frames of at most `bytes`.
    mutating func delivered(bytes: Int) {
        bytesSinceRequest += bytes
    }
}

/// The fan-out's drains: gathered while the publisher delivers a batch, requested at its end, and carried out
/// by one `LoopDrainer` per event loop.
final class DrainRequests: Sendable {
    private struct State {
        var drains = Drains()
        var drainers: [LoopDrainer] = []
    }

    /// Only the publisher touches it, so the lock is never contended.
    private let state = Mutex(State())
    let flushInterval: TimeAmount

    init(flushInterval: TimeAmount) {
        self.flushInterval = flushInterval
    }

    /// Runs `body` to offer frames; requests the drains early when a batch grows large.
    func collect(_ body: (inout Drains) -> Void) {
        let offered = state.withLock { state in
            body(&state.drains)
            return state.drains.bytesSinceRequest
        }
        // At once, not at the end of a flush interval: the publisher can offer a send queue's worth to one
        // connection faster than that, and only a reader that is actually slow should overflow. Every loop,
        // because the connections offered the most may be those whose drain already waits for the interval
        // (their offers ask for no new one).
        if offered >= Drains.bytesPerRequest { request(now: true) }
    }

    /// Hands every gathered drain to its loop's drainer and starts over; `now` has every loop drain all it
    /// holds at once, skipping the flush interval.
    func request(now: Bool = false) {
        state.withLock { state in
            for (loop, _) in state.drains.loops where !state.drainers.contains(where: { $0.loop === loop }) {
                state.drainers.append(LoopDrainer(loop: loop, flushInterval: flushInterval))
            }
            for drainer in state.drainers {
                let outboxes = state.drains.loops.first { $0.loop === drainer.loop }?.outboxes ?? []
                if now || !outboxes.isEmpty { drainer.drain(outboxes, now: now) }
            }
            state.drains.loops.removeAll(keepingCapacity: true)
            state.drains.bytesSinceRequest = 0
        }
    }
}

/// Drains outboxes on one event loop, at most once per `flushInterval` when busy.
///
/// The first request after a quiet interval is carried out at once, so a lone message waits for nothing. Under
/// load, requests that come sooner wait for the end of the interval and are carried out together: a connection
/// that was sent ten messages in the meantime gets them in one `writev` instead of ten. That is where a loaded
/// server's CPU goes (each write to a socket runs the kernel's whole TCP path), and it is what an IRC daemon's
/// main loop does implicitly: write each client's buffer once per pass.
final class LoopDrainer: Sendable {
    private struct State {
        var waiting: [Outbox] = []
        var lastRound: NIODeadline?
        var scheduled = false
    }

    let loop: any EventLoop
    let flushInterval: TimeAmount
    private let state: NIOLoopBoundBox<State>

    init(loop: any EventLoop, flushInterval: TimeAmount) {
        self.loop = loop
        self.flushInterval = flushInterval
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: loop)
    }

    /// Drains `outboxes` at the end of the interval; with `now`, at once, together with all that waits.
    func drain(_ outboxes: [Outbox], now: Bool = false) {
        guard flushInterval > .zero else {
            loop.execute { for outbox in outboxes { outbox.drain() } }
            return
        }
        loop.execute { self.schedule(outboxes, now: now) }
    }

    /// On the loop.
    private func schedule(_ outboxes: [Outbox], now: Bool) {
        state.value.waiting.append(contentsOf: outboxes)
        if now { return round() }
        guard !state.value.scheduled else { return }
        if let last = state.value.lastRound, last + flushInterval > loop.now {
            state.value.scheduled = true
            loop.scheduleTask(deadline: last + flushInterval) { self.round() }
        } else {
            round()
        }
    }

    /// A round run early leaves its scheduled task in place; that one then finds little or nothing to do.
    private func round() {
        state.value.scheduled = false
        state.value.lastRound = loop.now
        let outboxes = state.value.waiting
        state.value.waiting.removeAll(keepingCapacity: true)
        for outbox in outboxes { outbox.drain() }
    }
}
