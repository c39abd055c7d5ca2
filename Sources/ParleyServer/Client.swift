import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// A registered client as the chat core reaches it: its renderer, its outbox, and why it was closed. Equal only
/// to itself.
public final class Client: Sendable, Hashable {
    public static func == (lhs: Client, rhs: Client) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    let renderer: any Renderer
    let outbox: Outbox
    private let closeReason = Mutex<LeaveReason?>(nil)

    init(renderer: any Renderer, outbox: Outbox) {
        self.renderer = renderer
        self.outbox = outbox
    }

    /// Ends the connection after its queue drains; the first reason given is kept.
    func close(reason: LeaveReason) {
        closeReason.withLock { $0 = $0 ?? reason }
        outbox.finish()
    }

    var reasonClosed: LeaveReason? { closeReason.withLock { $0 } }
}
