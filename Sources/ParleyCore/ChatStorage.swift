import Foundation

/// Everything Parley keeps, behind one seam: messages and their history, accounts, room policies with the
/// audit trail, and word of the changes someone else made to them. The executable picks the implementation
/// (SQLite in the data folder, PostgreSQL, or memory); the server and the core know only this protocol.
public protocol ChatStorage: MessageStore, AccountStore, RoomStore {
    /// Where it keeps things, for the start-up log and for errors: a path, or a URL without its password.
    var location: String { get }
    /// Changes made by someone else (`parley account` in another process, another node), as they are noticed.
    /// Each call makes a new sequence; it finishes when its consumer stops reading or the storage closes.
    func changes() -> AsyncStream<StorageChange>
    /// Other servers write to the same log (nodes of one chat, docs/ARCHITECTURE.md): the hub then keeps what the
    /// publisher needs to deliver their messages in order (`ChatHub(sharedLog:)`).
    var sharesLog: Bool { get }
    /// This server's name among the nodes (`--node-name`); nil when it shares nothing.
    var nodeName: String? { get }
    /// The audit trail, oldest first (account and moderation actions).
    func auditTrail() async throws -> [AuditEntry]
    /// Ends every connection; nothing may be called after.
    func close() async
}

/// What someone else changed in the storage.
public enum StorageChange: Sendable, Equatable {
    /// Accounts were created, deleted, or had their password or operator flag changed.
    case accounts
    /// Other nodes may have committed entries to the log (`MessageStore.catchUp` reads them). Said after each of
    /// their batches and once a second besides, so a lost wake-up only delays them.
    case log
    /// The other nodes ended this node's sessions (its lease ran out while it lived: a stall, a partition): they
    /// are to be told again who is here (`ChatHub.tellPresenceAgain`).
    case presenceLost
}

extension ChatStorage {
    public var sharesLog: Bool { false }
    public var nodeName: String? { nil }
}

extension StorageChange {
    /// Asks `version` every `interval` and yields `.accounts` whenever the answer moves from the one before,
    /// the first from `baseline` (read when the store opened, so that a change made between the opening and the
    /// first tick is not lost): how a store notices another process's changes without a push channel. A failed
    /// read is skipped, not fatal: the next tick asks again; `version` throwing `CancellationError` (the store
    /// has closed) ends the sequence.
    public static func polling(
        every interval: Duration, from baseline: Int?, version: @escaping @Sendable () async throws -> Int
    ) -> AsyncStream<StorageChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StorageChange.self, bufferingPolicy: .bufferingNewest(1))
        // Unstructured, because the stream is handed to a consumer that outlives this call; it is cancelled when
        // that consumer stops reading (onTermination), and it ends by itself once the store has closed.
        let poller = Task {
            var seen = baseline
            while !Task.isCancelled {
                guard (try? await Task.sleep(for: interval)) != nil else { break }
                let now: Int
                do {
                    now = try await version()
                } catch is CancellationError {
                    break
                } catch {
                    continue
                }
                if let before = seen, before != now { continuation.yield(.accounts) }
                seen = now
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in poller.cancel() }
        return stream
    }
}
