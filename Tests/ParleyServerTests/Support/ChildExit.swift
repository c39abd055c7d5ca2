import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How a child process ended: its exit status, or the signal that ended it.
struct ChildExit: Sendable, Equatable {
    let status: Int32
    /// Ended by a signal (`status` is then 128 + the signal, as a shell reports it).
    let signaled: Bool

    /// Waits for child `pid` (`Spawned`) to end, with `waitpid` on a thread of its own: nothing else reaps it,
    /// and a thread cannot miss the end the way a SIGCHLD handler on a busy process can.
    static func of(pid: pid_t) -> EventLoopFuture<ChildExit> {
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: ChildExit.self)
        Thread.detachNewThread {
            var status: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
            guard reaped == pid else { return promise.fail(TestFailure("waitpid(\(pid)) failed: \(String(cString: strerror(errno)))")) }
            let signal = status & 0x7f
            promise.succeed(signal == 0 ? ChildExit(status: (status >> 8) & 0xff, signaled: false) : ChildExit(status: 128 + signal, signaled: true))
        }
        return promise.futureResult
    }
}
