import NIOCore
import Synchronization

/// One connection's way out: a bounded queue that any task offers frames to without waiting, drained onto the
/// socket by the channel's own event loop.
///
/// This is what keeps one slow reader from stalling or bloating everyone else: `offer` never suspends, and when
/// the queued bytes would pass `limitBytes` the outbox drops everything and closes that connection alone
/// (ergo's "SendQ exceeded"). A drain takes everything queued, writes it and flushes once, so a connection
/// that is sent many events while its loop is busy gets them in one `writev`. While the socket is not
/// writable (NIO's high-water mark) nothing is taken: frames wait here, where they count against the limit.
///
/// A drain is requested only by the offer that finds none pending, so a burst of events costs one task on the
/// event loop per connection at most; the fan-out groups those requests per event loop (`DrainRequests`).
///
/// A *hold* reserves a place in the stream for a reply that is still being made (a history read): frames
/// offered after it wait behind it, counted against the limit, until it is released with the reply. So the
/// publisher never waits for the store on one client's behalf, and that client still gets the reply exactly
/// where it asked for it.
final class Outbox: Sendable {
    enum Phase: Sendable, Equatable {
        case open
        /// No more frames are accepted; the next drain sends what is left, then closes.
        case finishing
        /// The reader fell too far behind; what was queued is dropped and the channel closed.
        case overflowed
        /// Everything is sent, or the channel is gone.
        case done
    }

    /// A place reserved in the stream, and the frames offered after it.
    private struct Held {
        let id: UInt64
        var released = false
        var frames: [ByteBuffer] = []
    }

    private struct State {
        var phase = Phase.open
        var frames: [ByteBuffer] = []
        /// The array the last drain wrote from, emptied: the next batch reuses its storage.
        var spare: [ByteBuffer] = []
        /// Holds in stream order; frames offered while there are any go behind the last.
        var held: [Held] = []
        var nextHold: UInt64 = 0
        /// Every byte queued: ready and held.
        var bytes = 0
        /// A drain is scheduled, or waits for the socket to become writable: offers need not request another.
        var drainRequested = false

        enum Taken {
            case nothing
            case frames([ByteBuffer], last: Bool)
        }

        mutating func take() -> Taken {
            drainRequested = false
            switch phase {
            case .open where frames.isEmpty, .overflowed, .done:
                return .nothing
            case .finishing where !held.isEmpty && frames.isEmpty:
                return .nothing  // the goodbye waits behind a reply still being read
            case .open, .finishing:
                // The last drain, once nothing is held any more.
                let last = phase == .finishing && held.isEmpty
                if last { phase = .done }
                defer {
                    // The batch leaves with the only reference to its storage, so the drain can empty and
                    // return it without a copy.
                    frames = spare
                    spare = []
                    bytes = held.reduce(0) { $0 + $1.frames.reduce(0) { $0 + $1.readableBytes } }
                }
                return .frames(frames, last: last)
            }
        }
    }

    /// The largest batch array kept for reuse: enough for a busy room's few messages per flush interval, and at
    /// most about 200 bytes per idle connection (under a heavier load each drain's array is larger than any
    /// kept one would be anyway).
    static let spareCapacity = 8

    let limitBytes: Int
    /// How long a goodbye may take to drain when `finish` names no deadline.
    let linger: Duration
    let channel: any Channel
    private let state = Mutex(State())
    /// The writer's place in the pipeline while the channel is open; only touched on the event loop.
    private let context: NIOLoopBoundBox<ChannelHandlerContext?>

    /// Adds the handler that drains it at the end of `channel`'s pipeline as it is now, so that what it writes
    /// passes through every handler already there (TLS above all) on its way to the socket; call on the
    /// channel's event loop, before the handlers that read (the door's framing).
    init(channel: any Channel, limitBytes: Int, linger: Duration) throws {
        self.channel = channel
        self.limitBytes = limitBytes
        self.linger = linger
        self.context = NIOLoopBoundBox(nil, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(Writer(self), position: .last)
    }

    var eventLoop: any EventLoop { channel.eventLoop }

    var phase: Phase { state.withLock { $0.phase } }

    /// Queues a frame and sees that it is sent; never waits. Past the limit the outbox overflows and closes.
    func send(_ frame: ByteBuffer) {
        if offer(frame) == .needsDrain { requestDrain() }
    }

    enum Offered: Equatable {
        case queued
        /// Queued, and the caller must request a drain (this outbox had none pending).
        case needsDrain
        /// The outbox overflowed now or before, or is ending: the frame will not be sent.
        case dropped
    }

    /// Queues a frame. Past the limit the outbox overflows and closes the channel.
    func offer(_ frame: ByteBuffer) -> Offered {
        let (overflowed, offered) = state.withLock { state -> (Bool, Offered) in
            switch state.phase {
            // A frame larger than the whole limit still goes into an empty queue: a long reply is not a
            // slow reader.
            case .open where state.bytes > 0 && state.bytes + frame.readableBytes > limitBytes:
                state.phase = .overflowed
                state.frames = []
                state.held = []
                state.bytes = 0
                return (true, .dropped)
            case .open where !state.held.isEmpty:
                state.held[state.held.count - 1].frames.append(frame)
                state.bytes += frame.readableBytes
                return (false, .queued)  // nothing to send until the hold before it is released
            case .open:
                state.frames.append(frame)
                state.bytes += frame.readableBytes
                defer { state.drainRequested = true }
                return (false, state.drainRequested ? .queued : .needsDrain)
            case .overflowed, .finishing, .done:
                return (false, .dropped)  // ended: the frame is dropped
            }
        }
        // At once: the reader may be stuck on a socket nobody reads, where no drain would ever come.
        if overflowed { channel.close(promise: nil) }
        return offered
    }

    /// Reserves the next place in the stream; what is offered from now on waits until `release`.
    func hold() -> UInt64 {
        state.withLock { state in
            defer { state.nextHold += 1 }
            if state.phase == .open { state.held.append(Held(id: state.nextHold)) }
            return state.nextHold
        }
    }

    /// Puts `frame` in the place `hold` reserved and lets through everything up to the next unreleased hold.
    /// A reply larger than the whole limit is let in when nothing is queued before it (as `offer` does: a long
    /// reply is not a slow reader); otherwise the limit holds, and past it the outbox overflows.
    func release(_ hold: UInt64, with frame: ByteBuffer?) {
        let (overflowed, needsDrain) = state.withLock { state -> (Bool, Bool) in
            guard let index = state.held.firstIndex(where: { $0.id == hold }) else { return (false, false) }
            if let frame {
                let ahead = state.frames.reduce(0) { $0 + $1.readableBytes }
                    + state.held[..<index].reduce(0) { $0 + $1.frames.reduce(0) { $0 + $1.readableBytes } }
                if ahead > 0 && state.bytes + frame.readableBytes > limitBytes {
                    state.phase = .overflowed
                    state.frames = []
                    state.held = []
                    state.bytes = 0
                    return (true, false)
                }
                state.held[index].frames.insert(frame, at: 0)
                state.bytes += frame.readableBytes
            }
            state.held[index].released = true
            var freed = false
            while let first = state.held.first, first.released {
                state.frames += first.frames
                state.held.removeFirst()
                freed = true
            }
            guard freed, !state.drainRequested else { return (false, false) }
            state.drainRequested = true
            return (false, true)
        }
        if overflowed { channel.close(promise: nil) }
        if needsDrain { requestDrain() }
    }

    /// Accepts no more frames; what is queued is sent, then the channel closes — after `deadline` (nil: the
    /// linger) at the latest, even if the peer does not read.
    func finish(drainingFor deadline: Duration? = nil) {
        let (ended, needsDrain) = state.withLock { state -> (Bool, Bool) in
            guard state.phase == .open else { return (false, false) }
            state.phase = .finishing
            defer { state.drainRequested = true }
            return (true, !state.drainRequested)
        }
        guard ended else { return }
        if needsDrain { requestDrain() }
        let channel = channel
        channel.eventLoop.scheduleTask(in: (deadline ?? linger).timeAmount) { channel.close(promise: nil) }
    }

    /// Closes the channel after `deadline` whatever is still queued: the bound on a goodbye that waits for
    /// others' work to reach it.
    func close(after deadline: Duration) {
        let channel = channel
        channel.eventLoop.scheduleTask(in: deadline.timeAmount) { channel.close(promise: nil) }
    }

    func requestDrain() {
        eventLoop.execute { self.drain() }
    }

    /// Writes everything queued and flushes once; on the event loop.
    func drain() {
        // Gone, or not writable: a writability change drains again (`drainRequested` stays set until then).
        guard let context = context.value, context.channel.isWritable else { return }
        switch state.withLock({ $0.take() }) {
        case .nothing:
            return
        case .frames(var frames, last: false):
            context.write(NIOAny(Self.joined(frames, allocator: context.channel.allocator)), promise: nil)
            // Kept for the next batch only if it is small: after a burst of thousands of frames (a crowd
            // joining) it would otherwise keep its capacity, kilobytes, for the life of the connection.
            frames.removeAll(keepingCapacity: frames.capacity <= Self.spareCapacity)
            state.withLock { $0.spare = frames }
            context.flush()
        case .frames(let frames, last: true):
            context.write(NIOAny(Self.joined(frames, allocator: context.channel.allocator)), promise: nil)
            // Closing at once would throw away what NIO has not yet handed to the kernel (the goodbye above all).
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
            written.futureResult.whenComplete { [channel] _ in channel.close(promise: nil) }
        }
    }

    /// The frames as one buffer: copying a few hundred bytes is cheaper than NIO's bookkeeping for each
    /// separate write (a pipeline pass, a pending-write entry, an iovec, a retain and a release).
    private static func joined(_ frames: [ByteBuffer], allocator: ByteBufferAllocator) -> ByteBuffer {
        guard frames.count > 1 else { return frames.first ?? ByteBuffer() }
        var joined = allocator.buffer(capacity: frames.reduce(0) { $0 + $1.readableBytes })
        for frame in frames { joined.writeImmutableBuffer(frame) }
        return joined
    }

    private func attach(_ context: ChannelHandlerContext) {
        self.context.value = context
    }

    /// The channel closed: nothing more can be sent, so nothing more is kept.
    private func detach() {
        context.value = nil
        state.withLock { state in
            if state.phase != .overflowed { state.phase = .done }
            state.frames = []
            state.held = []
            state.bytes = 0
        }
    }

    /// The outbox's hands in the pipeline, after the socket and any TLS: it gives the outbox its context and
    /// drains it when the socket can take more.
    private final class Writer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let outbox: Outbox

        init(_ outbox: Outbox) {
            self.outbox = outbox
        }

        func handlerAdded(context: ChannelHandlerContext) {
            outbox.attach(context)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            outbox.detach()
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if context.channel.isWritable { outbox.drain() }
            context.fireChannelWritabilityChanged()
        }
    }
}
