import Foundation

/// What the server tells clients. Every wire format renders each case; the core never encodes.
public enum ChatEvent: Sendable, Equatable {
    /// Registration succeeded; `online` users (the new one included) are in `rooms` rooms; at most `mostOnline`
    /// were online at once since the server started.
    case welcome(nick: String, server: String, online: Int = 1, rooms: Int = 1, mostOnline: Int = 1)
    /// The message of the day (`parley serve --motd FILE`), right after the welcome; no lines: none is set.
    case motd(lines: [String])
    /// A room message, a private message or a server notice.
    case message(ChatMessage)
    /// A server notice to everyone (target `.everyone`) as one recipient gets it: `rooms` are the rooms that
    /// recipient is in, so a protocol with a window per room (IRC) can show it where the user looks.
    case announcement(ChatMessage, rooms: [String])
    /// The sender's own message was accepted, with the id and time the server gave it.
    case ack(ref: String?, message: ChatMessage)
    /// `account`: the joiner's account, when logged in (IRC's extended-join shows it).
    /// `realName`: what the joiner gave IRC's USER, if anything (extended-join shows it).
    case joined(room: String, nick: String, account: String? = nil, realName: String? = nil)
    case left(room: String, nick: String, reason: LeaveReason)
    case nickChanged(from: String, to: String)
    /// The members of a room, or everyone online when `room` is nil; `operators` are those of them who
    /// operate the room. `ref`: the request's, when it was asked for (`who`), not part of a join.
    case members(room: String?, nicks: [String], operators: [String] = [], voiced: [String] = [], secret: Bool = false, ref: String? = nil)
    case rooms([RoomSummary])
    /// A room's topic, for whoever joins or asks: who set it and when, if known.
    case topic(room: String, text: String, setBy: String?, setAt: Date? = nil)
    /// Someone changed a room's topic: told to everyone in it.
    /// `id`: the change is also a message of the room's history (`Kind.topic`), with this id.
    case topicChanged(room: String, text: String, by: Actor, at: Date, id: Int64)
    case error(ChatError, ref: String?)
    /// Information from the server to this user alone (flood warnings and the like).
    case notice(String)
    /// The command list, for text clients.
    case help([CommandHelp])
    /// The server is stopping; `reason` when one was given (nil: none, the usual case).
    case shutdown(reason: String?)
    case pong(ref: String?)
    /// After a part or a kick from it: the user's current room now, or nil when they are in none. Only a
    /// front door with a current room (plain text) shows it.
    case currentRoom(String?)
    /// Stored messages of a room, oldest first: replayed on join, or asked for with `history`.
    case history(room: String, messages: [ChatMessage], ref: String?)
    /// Rooms and private conversations with history in a window (IRC's CHATHISTORY TARGETS), the longest quiet
    /// first.
    case historyTargets([HistoryTarget], ref: String?)
    /// An operator acted on a room (or a ban or mute ran out): told to everyone in it.
    case moderation(ModerationNotice)
    /// The bans and mutes in force in a room, for whoever asked.
    /// A room's bans, mutes and ban exceptions; `ref`: the request's.
    case restrictions(room: String, [Restriction], ref: String? = nil)
    /// Someone went away (`message`) or came back (nil): told to them and to everyone who shares a room
    /// with them.
    case awayChanged(nick: String, message: String?)
    /// The user just messaged is away: told to the sender.
    case isAway(nick: String, message: String)
    /// The answer to `whois`: nil when nobody goes by `query`.
    case whois(query: String, Profile?)
    /// The answer to `whowas`: users gone lately (no rooms, no away), newest first.
    case whowas(query: String, [Profile])
    /// The answer to `lookup` (IRC's WHO), `query` as asked; `ref` is the request's (IRC's WHOX fields ride in it).
    case whoList(query: String, [Profile], ref: String?)
    /// `by` (logged in to `account`, if any) invites this user (`nick`) to `room`.
    case invited(room: String, nick: String, by: String, account: String? = nil)
    /// The invitation the sender asked for went to `nick`.
    case inviting(room: String, nick: String)
    /// A room's modes (the topic lock among them), its key (`*` for those outside it) and when it came to life.
    case modes(room: String, RoomModes, key: String?, limit: Int?, created: Date)
    /// The user's own invisibility (user mode +i) is now `on`.
    case invisible(Bool)
}

public struct ChatMessage: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case normal, action, notice
        /// IRC's TAGMSG: no text, only client-only tags (a typing indicator, a reaction). Relayed live to
        /// clients that take tags; stored only when it asks to be (`+draft/persist`: a reaction, not a typing
        /// indicator), and replayed only to IRC clients with draft/event-playback.
        case tags
        /// A room's topic set to `text` by `from` (nil: the server operator): kept in the room's history, so a
        /// replay shows when the subject changed; live it is the `topicChanged` event, which carries its id.
        case topic
    }

    public enum Target: Sendable, Equatable {
        case room(String)
        /// A private message to the named user.
        case user(String)
        /// A server notice to everyone.
        case everyone
    }

    /// Server-assigned, strictly increasing across the whole server.
    public let id: Int64
    public let time: Date
    /// The sender's nick; nil for notices from the server itself.
    public let from: String?
    /// The sender's account when they were logged in (live messages only; history does not keep it).
    public let account: String?
    public let target: Target
    public let kind: Kind
    public let text: String
    /// Client-only tags (IRCv3 `+name`), relayed to clients that take tags, live and in history.
    public let tags: [String: String]
    /// For a private message, the recipient's account (its key) when logged in: the message is kept in that
    /// account's history of the conversation (the sender's is `account`). Never shown.
    public let recipientAccount: String?

    public init(
        id: Int64, time: Date, from: String?, account: String? = nil, target: Target, kind: Kind, text: String, tags: [String: String] = [:],
        recipientAccount: String? = nil
    ) {
        self.tags = tags
        self.recipientAccount = recipientAccount
        self.id = id
        self.time = time
        self.from = from
        self.account = account
        self.target = target
        self.kind = kind
        self.text = text
    }
}

extension ChatEvent {
    /// A room's members as people read them: `@` before its operators and `+` before those with a voice, as
    /// IRC's NAMES shows them (the highest mark only).
    public static func marked(_ nicks: [String], operators: [String], voiced: [String]) -> [String] {
        let (operators, voiced) = (Set(operators), Set(voiced))
        return nicks.map { operators.contains($0) ? "@" + $0 : voiced.contains($0) ? "+" + $0 : $0 }
    }
}

extension ChatMessage {
    /// Whether it is stored: everything but tags alone, unless those ask to be kept (`+draft/persist`).
    public var isKept: Bool { kind != .tags || tags["+draft/persist"] != nil }
}

/// Who acted on someone else: a user, or the server itself (its operator at the console, or its own rules).
public enum Actor: Sendable, Equatable, CustomStringConvertible {
    case user(String)
    case server

    /// How people are told: the nick, or "the server operator".
    public var description: String {
        switch self {
        case .user(let nick): nick
        case .server: Moderator.consoleName
        }
    }

    /// The nick, for protocols whose lines name a user as their source (IRC); nil for the server, which such
    /// protocols name by the server's own name.
    public var nick: String? {
        if case .user(let nick) = self { return nick }
        return nil
    }
}

/// Why someone left a room.
public enum LeaveReason: Sendable, Equatable {
    case parted(String?)
    case quit(String?)
    case connectionLost
    case kicked(by: Actor, reason: String?)
    case sendQueueFull
    /// An IRC client answered no PING: the connection is presumed dead.
    case pingTimeout
    case serverShutdown
    /// A reason as a client received it from a server: the cause word and the text, verbatim.
    case received(cause: String, text: String)

    /// Leaving the server rather than one room (IRC says it once, as QUIT, not per room).
    public var isDeparture: Bool {
        switch self {
        case .parted, .kicked: false
        default: true
        }
    }

    /// The connection was ended in order, with everything sent to it flushed first (a part, quit, kick or
    /// shutdown), rather than lost on the way (a dropped connection, a ping timeout, a full send queue).
    public var isOrderly: Bool {
        switch self {
        case .parted, .quit, .kicked, .serverShutdown: true
        case .connectionLost, .sendQueueFull, .pingTimeout, .received: false
        }
    }

    /// A stable word for machines.
    public var cause: String {
        switch self {
        case .parted: "part"
        case .quit: "quit"
        case .connectionLost: "lost"
        case .kicked: "kicked"
        case .sendQueueFull: "send_queue_full"
        case .pingTimeout: "ping_timeout"
        case .serverShutdown: "shutdown"
        case .received(let cause, _): cause
        }
    }

    /// The words shown to people.
    public var text: String {
        switch self {
        case .parted(let reason): reason ?? "left"
        case .quit(let reason): reason.map { "quit: \($0)" } ?? "quit"
        case .connectionLost: "connection lost"
        case .kicked(let by, let reason): "kicked by \(by)" + (reason.map { ": \($0)" } ?? "")
        case .sendQueueFull: "too slow to keep up (send queue full)"
        case .pingTimeout: "ping timeout"
        case .serverShutdown: "server shutting down"
        case .received(_, let text): text
        }
    }
}

public struct RoomSummary: Sendable, Equatable {
    public let name: String
    public let members: Int
    public let topic: String

    public init(name: String, members: Int, topic: String) {
        self.name = name
        self.members = members
        self.topic = topic
    }
}

public struct CommandHelp: Sendable, Equatable {
    public let usage: String
    public let summary: String
    public let aliases: [String]

    public init(usage: String, summary: String, aliases: [String]) {
        self.usage = usage
        self.summary = summary
        self.aliases = aliases
    }
}
