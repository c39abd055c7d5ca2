import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How a child process ended: its exit status, or the signal that ended it.
struct ChildExit: Sendable, Equatable {
    let status: Int32
    /// Ended by a signal (`status` is then 128 + the signal, as a shell reports it).
    let signaled: Bool

    /// Waits for `process`, already running, to end: with `waitpid` on a thread of its own, because Foundation's
    /// termination handler is driven by SIGCHLD, which a busy test process can miss. Seen twice: `pg_ctl start`,
    /// and a `parley` an executable test ran, each left a zombie that nobody reaped and a wait with no end (the
    /// whole suite hung, its event loops with no timer left). When Foundation reaps the child first, its status
    /// comes from Foundation.
    static func of(_ process: Process) -> EventLoopFuture<ChildExit> {
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: ChildExit.self)
        let pid = process.processIdentifier
        Thread.detachNewThread {
            var status: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
            guard reaped == pid else {
                process.waitUntilExit()
                return promise.succeed(ChildExit(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal))
            }
            let signal = status & 0x7f
            promise.succeed(signal == 0 ? ChildExit(status: (status >> 8) & 0xff, signaled: false) : ChildExit(status: 128 + signal, signaled: true))
        }
        return promise.futureResult
    }
}
