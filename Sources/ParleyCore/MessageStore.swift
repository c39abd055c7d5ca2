import Foundation

/// Which stored messages a history request wants, oldest first in every case.
public enum HistoryQuery: Sendable, Equatable {
    /// The last `count` messages.
    case latest(Int)
    /// Up to `count` messages older than `id` (paging backwards).
    case before(Int64, count: Int)
    /// Up to `count` messages newer than `id` (paging forwards, and resuming after a reconnect).
    case after(Int64, count: Int)
    /// Up to `count` messages strictly between two points: the newest of them when `newest`, else the
    /// oldest (IRC's CHATHISTORY, whose references are message ids or times).
    case range(after: HistoryPoint, before: HistoryPoint, count: Int, newest: Bool)
    /// Up to `count` messages around a point: about half before it, the rest from it on (the message at the
    /// point, when there is one, among them).
    case around(HistoryPoint, count: Int)
}

extension HistoryQuery {
    /// How many messages it asks for at most.
    public var count: Int {
        switch self {
        case .latest(let count), .before(_, let count), .after(_, let count), .range(_, _, let count, _), .around(_, let count): count
        }
    }

    /// What it costs in flood control, in lines: one, and one more for every 100 messages, so asking for a lot
    /// of history paces the asker, not everyone else.
    public var cost: Int { 1 + count / 100 }
}

/// A point in a room's history: a message id, or a moment.
public enum HistoryPoint: Sendable, Equatable {
    case id(Int64)
    case time(Date)
}

/// A read of stored history, carried out off the publisher's path (`HistoryReads`).
public enum HistoryLookup: Sendable, Equatable {
    /// A room's messages below id `below` (the next id when it was asked for); kept TAGMSGs too when `withTags`.
    case room(String, HistoryQuery, below: Int64, withTags: Bool = false)
    /// An account's (its key) private conversation with `nick` (as it was asked for: the reply names it so).
    case conversation(account: String, with: String, HistoryQuery, below: Int64, withTags: Bool = false)
    case targets(rooms: [String], account: String?, after: Date, before: Date, count: Int, newest: Bool)

    /// What the reply is about: the room, the nick, or nothing in particular.
    var name: String {
        switch self {
        case .room(let room, _, _, _): room
        case .conversation(_, let nick, _, _, _): nick
        case .targets: "your conversations"
        }
    }
}

/// A room or private conversation with history, and when its latest message was sent (IRC's CHATHISTORY
/// TARGETS): `name` is the room, or the nick the conversation is with.
public struct HistoryTarget: Sendable, Equatable {
    public let name: String
    public let latest: Date

    public init(name: String, latest: Date) {
        (self.name, self.latest) = (name, latest)
    }
}

/// Where messages are kept. The chat core depends only on this protocol, so the embedded SQLite store and a
/// PostgreSQL one are interchangeable.
public protocol MessageStore: Sendable {
    /// Stores messages durably, all or none; returns only once they would survive a crash.
    func append(_ messages: [ChatMessage]) async throws
    /// Stores a batch's messages (their ids provisional, within `ids`) as the next entries of the log, durably,
    /// all or none, and says where they landed and what other nodes put there first (`LogCommit`). A store that
    /// is the only writer keeps the ids as they are (`LogCommit.asNumbered`); the publisher calls this, not
    /// `append`. `ids` may hold ids of messages that are not kept, and be non-empty with `messages` empty.
    func commit(_ messages: [ChatMessage], ids: Range<Int64>) async throws -> LogCommit
    /// `commit`, with the presence changes of the batch (ids within `ids` too) written to the log beside its
    /// messages: only a node of a shared database has any.
    func commit(_ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>) async throws -> LogCommit
    /// `commit`, handing what other nodes wrote before the batch (`LogCommit.others` and `.presence`) to `whenRead`
    /// as soon as it is read: a node's publisher delivers it then, while its own batch is still being flushed.
    /// Called at most once. What `whenRead` takes (true) stays read whether the commit then succeeds or fails;
    /// what it refuses (a commit that went on past its deadline) is read again later.
    func commit(
        _ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>, whenRead: @escaping @Sendable (LogCommit) -> Bool
    ) async throws -> LogCommit
    /// What other nodes committed since this node last read the log (`LogCommit.others` and `.presence`), in log
    /// order: what a node with nothing of its own to write delivers when woken. None for a store that is the only
    /// writer.
    func catchUp() async throws -> LogCommit
    /// Who is online on the other nodes of a shared database, each an `online` entry, read at a point of the log
    /// that `catchUp` then goes on from: what a node applies before it serves. None for a store not shared.
    func presence() async throws -> [PresenceEntry]
    /// Who is online on the other nodes now, as `presence()`, leaving where this node reads the log as it is: for a
    /// node that was cut off long enough to miss entries the others have since forgotten.
    func othersPresent() async throws -> [PresenceEntry]
    /// A room's messages with ids below `below`, oldest first. The bound is the next id at the moment the
    /// replay was asked for, so a replay never includes a message that is also delivered live after it.
    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage]
    /// The highest id stored, so ids keep increasing across restarts (0 when empty).
    func lastMessageID() async throws -> Int64
    /// History reads it serves at once beside its writes (the publisher runs that many).
    var concurrentReads: Int { get }
    /// `history(room:_:below:)`, with the TAGMSGs kept with `+draft/persist` among them only when `withTags`:
    /// only IRC's event playback shows them, so for every other reader they must not use up the page.
    func history(room: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage]
    /// The private messages between the account (its key) and the user called `nick`, as that account kept
    /// them: those it sent or received while logged in. Paged like a room's history.
    func conversation(account: String, with nick: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage]
    /// The rooms of `rooms` and the private conversations of `account` whose latest message was sent strictly
    /// between `after` and `before`, the longest quiet first: at most `count`, the most recent of them when
    /// `newest`.
    func targets(rooms: [String], account: String?, after: Date, before: Date, count: Int, newest: Bool) async throws -> [HistoryTarget]
}

extension MessageStore {
    public var concurrentReads: Int { 2 }
    /// The only writer: the batch as numbered.
    public func commit(_ messages: [ChatMessage], ids: Range<Int64>) async throws -> LogCommit {
        if !messages.isEmpty { try await append(messages) }
        return .asNumbered
    }
    /// A store that is not shared has nobody to tell.
    public func commit(_ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>) async throws -> LogCommit {
        try await commit(messages, ids: ids)
    }
    /// Hands over what was read once the commit is done.
    public func commit(
        _ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>, whenRead: @escaping @Sendable (LogCommit) -> Bool
    ) async throws -> LogCommit {
        let commit = try await commit(messages, presence: presence, ids: ids)
        _ = whenRead(commit)
        return commit
    }
    public func catchUp() async throws -> LogCommit { .asNumbered }
    public func presence() async throws -> [PresenceEntry] { [] }
    public func othersPresent() async throws -> [PresenceEntry] { [] }
    public func history(room: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        try await history(room: room, query, below: below).filter { withTags || $0.kind != .tags }
    }
    public func conversation(account: String, with nick: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] { [] }
    public func targets(rooms: [String], account: String?, after: Date, before: Date, count: Int, newest: Bool) async throws -> [HistoryTarget] { [] }
}

/// A store that keeps nothing: for tests of the chat core, and the baseline that measures what storage costs.
public struct NoStore: MessageStore {
    public init() {}
    public func append(_ messages: [ChatMessage]) async throws {}
    public func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] { [] }
    public func lastMessageID() async throws -> Int64 { 0 }
}
