#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization

/// A few file descriptors held back from connections, so that a server that runs out of them (`ulimit -n`,
/// a crowd of connections) keeps some for everything else a process opens now and then: SQLite's temporary
/// files, a PostgreSQL reconnection, a certificate reread, and the threads' own bookkeeping. Without them a
/// server at its limit was seen to crash: libdispatch, which runs Swift's tasks, opens `/proc/self/task/…/stat`
/// to watch its worker threads, and stops the process when it cannot.
///
/// The reserve is descriptors of `/dev/null`. When an accept fails for want of descriptors the reserve is let
/// go (`release`), and the listeners accept again only once it could be taken back whole (`refill`): so while
/// connections hold every other descriptor, the reserve's are free for the rest of the process.
final class DescriptorReserve: Sendable {
    /// One per process: descriptors are the process's.
    static let shared = DescriptorReserve(count: 16)

    private let count: Int
    private let held: Mutex<[CInt]>

    init(count: Int) {
        self.count = count
        self.held = Mutex([])
        _ = refill()
    }

    /// Takes the reserve back, all or nothing, and only when that leaves `slack` descriptors free besides (taking
    /// the last free ones, even for a moment, is what the reserve is there to prevent); true when it is whole.
    func refill() -> Bool {
        held.withLock { held in
            guard held.count < count else { return true }
            if let free = Self.freeDescriptors(), free < count - held.count + Self.slack { return false }
            var opened: [CInt] = []
            for _ in held.count..<count {
                let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else {
                    for descriptor in opened { close(descriptor) }
                    return false
                }
                opened.append(descriptor)
            }
            held += opened
            return true
        }
    }

    /// Whether the reserve is held whole (else the process is, or was a moment ago, out of descriptors).
    var isWhole: Bool {
        held.withLock { $0.count == count }
    }

    /// Descriptors left free besides the reserve's when it is taken back.
    static let slack = 4

    /// How many more descriptors this process may open: its limit less the entries of `/proc/self/fd` (nil where
    /// there is no such folder). Read only while the reserve is out, so its cost (a walk of every open descriptor)
    /// is paid only at the limit.
    private static func freeDescriptors() -> Int? {
        guard let limit = DescriptorLimit.current(), let directory = opendir("/proc/self/fd") else { return nil }
        var open = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_type == UInt8(DT_LNK) { open += 1 }
        }
        closedir(directory)
        // The walk's own descriptor was among them, and is free again.
        return Int(clamping: limit) - open + 1
    }

    /// Frees the reserve for the rest of the process.
    func release() {
        held.withLock { held in
            for descriptor in held { close(descriptor) }
            held.removeAll()
        }
    }

    /// Whether a connection just accepted may stay: the reserve is whole, or could be taken back whole now.
    func admitsConnections() -> Bool {
        isWhole || refill()
    }

    /// Whether an accept failed for want of descriptors (the process's or the system's).
    static func isExhaustion(_ error: any Error) -> Bool {
        guard let error = error as? IOError else { return false }
        return error.errnoCode == EMFILE || error.errnoCode == ENFILE
    }
}

/// On a listening socket, between the socket and `AcceptBackoffHandler`: lets the reserve go when an accept
/// fails for want of descriptors, and holds the next accept back until the reserve is whole again, trying once
/// a second. Every listener's gate, this one's and those waiting for connections meanwhile, closes what it accepts
/// while the reserve is out (`channelRead`), so none of them takes the freed descriptors.
final class ReserveGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias OutboundIn = any Channel

    private let reserve: DescriptorReserve
    private var retry: Scheduled<Void>?

    init(reserve: DescriptorReserve = .shared) {
        self.reserve = reserve
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if DescriptorReserve.isExhaustion(error) { reserve.release() }
        context.fireErrorCaught(error)
    }

    /// A connection just accepted, on the listener's own loop and in order with its errors: while the reserve is
    /// out it is closed at once (as NIO's own accept handler closes what it cannot take), so that no listener
    /// takes the freed descriptors, this one's accepts of the same wake-up included.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard reserve.admitsConnections() else {
            unwrapInboundIn(data).close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        guard retry == nil else { return }
        if reserve.refill() {
            context.read()
        } else {
            retry = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
                self.retry = nil
                self.read(context: context)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        retry?.cancel()
        retry = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let retry {
            retry.cancel()
            self.retry = nil
            context.read()
        }
    }
}

/// The process's descriptor limit. A server started from a shell or by systemd gets a soft limit of 1,024
/// (kept low for programs that still use `select`), far under what a chat of a few thousand needs; the hard
/// limit is what the administrator allows. Parley uses epoll, so it takes the hard limit, as Go programs do.
public enum DescriptorLimit {
    /// The soft limit in force.
    static func current() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return nil }
        return UInt64(limit.rlim_cur)
    }

    /// Raises the soft limit to the hard one; returns the limit now in force (nil when it cannot be read).
    @discardableResult
    public static func raise() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { limit = raised }
        }
        return UInt64(limit.rlim_cur)
    }

    #if canImport(Glibc)
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
    #endif
}
