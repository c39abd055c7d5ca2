import Foundation

/// What a room operator (or the server console) can do to a room. Every front door turns its syntax into one
/// of these, so each action has one implementation (`ChatState+Moderation`).
public enum Moderation: Sendable, Equatable {
    /// Removes a member from the room; they may come back unless banned.
    case kick(nick: String, reason: String?)
    /// Keeps whoever matches `mask` out of the room, for `seconds` or until lifted.
    case ban(mask: String, seconds: Int?, reason: String?)
    case unban(mask: String)
    /// Lists the room's bans, mutes and ban exceptions.
    case restrictions
    /// Lets whoever matches `mask` stay in the room but not speak in it.
    case mute(mask: String, seconds: Int?, reason: String?)
    case unmute(mask: String)
    case op(nick: String)
    case deop(nick: String)
    /// Locks (only operators may change it) or unlocks the topic.
    case topicLock(Bool)
    /// Sets the word joining the room needs (IRC's +k), or removes it (nil).
    case key(String?)
    /// Turns room modes on and off, all at once (one IRC MODE line): `t` is the topic lock.
    case modes(on: RoomModes, off: RoomModes)
    /// Caps how many may be in the room (IRC's +l), or lifts the cap (nil).
    case limit(Int?)
    /// Lets a member speak in a moderated room (IRC's +v), while they stay in it.
    case voice(nick: String)
    case devoice(nick: String)
    /// Lets whoever matches `mask` in despite the room's bans (IRC's +e, a ban exception), until lifted.
    case exempt(mask: String)
    case unexempt(mask: String)
}

/// The room modes that are on or off, by their IRC letters. A new room has `n` only.
public struct RoomModes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `i`: joining takes an invitation from an operator (or operator rights).
    public static let inviteOnly = RoomModes(rawValue: 1 << 0)
    /// `m`: only operators and voiced members speak.
    public static let moderated = RoomModes(rawValue: 1 << 1)
    /// `n`: only members send to the room (off: anyone may, as a bot posting without joining).
    public static let membersOnly = RoomModes(rawValue: 1 << 2)
    /// `s`: the room is not listed, nor shown in WHOIS, to those outside it.
    public static let secret = RoomModes(rawValue: 1 << 3)
    /// `t`: only operators change the topic (kept as the policy's `topicLocked`).
    public static let topicLocked = RoomModes(rawValue: 1 << 4)

    public static let letters: [(letter: Character, mode: RoomModes, meaning: String)] = [
        ("i", .inviteOnly, "invite only"), ("m", .moderated, "moderated"), ("n", .membersOnly, "members only"),
        ("s", .secret, "secret"), ("t", .topicLocked, "topic locked"),
    ]

    public init(letters: some StringProtocol) {
        self = RoomModes(Self.letters.filter { letters.contains($0.letter) }.map(\.mode))
    }

    /// `+i-n`-style text as modes to turn on and off; nil when it holds anything else.
    public static func change(_ text: String) -> (on: RoomModes, off: RoomModes)? {
        var (on, off, adding) = (RoomModes(), RoomModes(), true)
        for character in text {
            switch character {
            case "+": adding = true
            case "-": adding = false
            default:
                guard let mode = letters.first(where: { $0.letter == character })?.mode else { return nil }
                if adding { on.insert(mode); off.remove(mode) } else { off.insert(mode); on.remove(mode) }
            }
        }
        return on.isEmpty && off.isEmpty ? nil : (on, off)
    }

    /// The letters of the modes that are on, in order: `imnst`.
    public var letters: String { String(Self.letters.filter { contains($0.mode) }.map(\.letter)) }
    public var meanings: [String] { Self.letters.filter { contains($0.mode) }.map(\.meaning) }
}

/// A ban or a mute in one room.
public struct Restriction: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case ban, mute
        /// An exception to the room's bans (IRC's +e): whoever matches is let in, bans or not.
        case exception

        /// What the notice says when one is imposed, and when it is lifted.
        var imposed: ModerationNotice.Action {
            switch self {
            case .ban: .ban
            case .mute: .mute
            case .exception: .exempt
            }
        }

        var lifted: ModerationNotice.Action {
            switch self {
            case .ban: .unban
            case .mute: .unmute
            case .exception: .unexempt
            }
        }
    }

    public let kind: Kind
    public let mask: Mask
    public let setBy: String
    public let reason: String?
    public let since: Date
    /// When it ends by itself; nil: when an operator lifts it.
    public let until: Date?

    public init(kind: Kind, mask: Mask, setBy: String, reason: String?, since: Date, until: Date?) {
        self.kind = kind
        self.mask = mask
        self.setBy = setBy
        self.reason = reason
        self.since = since
        self.until = until
    }

    public func isActive(at now: Date) -> Bool { until.map { now < $0 } ?? true }
}

/// What a room keeps beyond its members: topic, topic lock, the accounts that operate it, bans and mutes.
/// It is stored, so it survives restarts; the store returns it at start.
public struct RoomPolicy: Sendable, Equatable {
    public var name: String
    public var topic = ""
    public var topicSetBy: String?
    /// When the topic was set (nil: before Parley kept it).
    public var topicSetAt: Date?
    public var topicLocked = false
    /// Modes other than the topic lock (which is `topicLocked`).
    public var modes: RoomModes = .membersOnly
    /// The most members the room takes (IRC's +l); operators and those an operator invited come in anyway.
    public var limit: Int?
    /// The word joining needs, if any (its owners and server operators join without it).
    public var key: String?
    /// Keys of the accounts that are operators of the room whenever they are in it.
    public var operators: Set<String> = []
    public var restrictions: [Restriction] = []

    public init(name: String) {
        self.name = name
    }

    /// An empty room keeps its policy only when it has an owner (an operator account): a room nobody owns is
    /// as fleeting as its members, bans and all, so nobody can make the server remember rooms without end.
    var isWorthKeeping: Bool { !operators.isEmpty }
}

/// A change to a room's stored policy, as the store applies it.
public enum RoomChange: Sendable, Equatable {
    case topic(room: String, text: String, setBy: String?, setAt: Date? = nil)
    case topicLock(room: String, Bool)
    case key(room: String, String?)
    /// The room's modes other than the topic lock.
    case modes(room: String, RoomModes)
    case limit(room: String, Int?)
    case addOperator(room: String, account: String)
    case removeOperator(room: String, account: String)
    /// Adds the restriction, replacing one of the same kind and mask.
    case restrict(room: String, Restriction)
    case lift(room: String, Restriction.Kind, mask: Mask)
    /// The room is empty and keeps nothing: its policy goes.
    case forget(room: String)
}

extension RoomPolicy {
    /// The policy with `change` made (as the stores make it in their tables; `forget` is the caller's).
    public mutating func apply(_ change: RoomChange) {
        switch change {
        case .topic(_, let text, let setBy, let setAt): (topic, topicSetBy, topicSetAt) = (text, setBy, setAt)
        case .topicLock(_, let locked): topicLocked = locked
        case .key(_, let key): self.key = key
        case .modes(_, let modes): self.modes = modes
        case .limit(_, let limit): self.limit = limit
        case .addOperator(_, let account): operators.insert(account)
        case .removeOperator(_, let account): operators.remove(account)
        case .restrict(_, let restriction):
            restrictions.removeAll { $0.kind == restriction.kind && $0.mask == restriction.mask }
            restrictions.append(restriction)
        case .lift(_, let kind, let mask): restrictions.removeAll { $0.kind == kind && $0.mask == mask }
        case .forget: break
        }
    }
}

/// One line of the audit trail: who did what to whom.
public struct AuditEntry: Sendable, Equatable {
    public let actor: String
    public let action: String
    public let target: String
    public let detail: String

    public init(actor: String, action: String, target: String, detail: String) {
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
    }
}

/// Announced to a room when its operators act (or a ban or mute runs out).
public struct ModerationNotice: Sendable, Equatable {
    public enum Action: String, Sendable {
        case ban, unban, mute, unmute, op, deop
        case topicLock = "topic_lock"
        case topicUnlock = "topic_unlock"
        case key, unkey
        /// Modes turned on and off: `target` says which, as IRC writes it (`+i-n`).
        case modes
        case voice, devoice
        /// A member limit set (`target` is the number) or lifted.
        case limit, unlimit
        /// A ban exception set or lifted (`target` is the mask).
        case exempt, unexempt
    }

    public let room: String
    public let action: Action
    /// A mask for bans and mutes, a nick for op and deop, the key for `key`, empty otherwise.
    public let target: String
    /// Who acted; nil when a ban or mute ran out by itself.
    public let by: Actor?
    public let reason: String?
    public let until: Date?

    public init(room: String, action: Action, target: String, by: Actor?, reason: String? = nil, until: Date? = nil) {
        self.room = room
        self.action = action
        self.target = target
        self.by = by
        self.reason = reason
        self.until = until
    }
}

/// Where room policies are kept (with the audit trail). `NoStore` keeps nothing.
public protocol RoomStore: Sendable {
    /// Applies the changes in order and writes the audit entries, all or none (one transaction); returns once
    /// they would survive a crash.
    func apply(_ changes: [RoomChange], audits: [AuditEntry]) async throws
    func roomPolicies() async throws -> [RoomPolicy]
}

extension NoStore: RoomStore {
    public func apply(_ changes: [RoomChange], audits: [AuditEntry]) async throws {}
    public func roomPolicies() async throws -> [RoomPolicy] { [] }
}

/// Whom a ban or mute is aimed at: `nick` or `nick@address`, each part a pattern where `*` is any run of
/// characters and `?` any one. The nick part matches a user's nick or their account, so a logged-in user
/// cannot slip out by renaming; the address part (optional) matches the address they connect from.
public struct Mask: Hashable, Sendable, CustomStringConvertible {
    public static let maximumLength = 80

    /// Lower-cased, as stored and shown.
    public let text: String
    private let nick: String
    private let address: String?

    public init(validating raw: String) throws(ChatError) {
        let cleaned = asciiLowercased(Sanitizer.trimmed(Sanitizer.name(raw)))
        let parts = cleaned.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let nick = parts.first.map(String.init) ?? ""
        let address = parts.count == 2 ? String(parts[1]) : nil
        guard !cleaned.isEmpty, cleaned.count <= Self.maximumLength, !nick.isEmpty, address?.isEmpty != true,
            nick.unicodeScalars.allSatisfy(Self.isNickPatternScalar),
            address?.unicodeScalars.allSatisfy(Self.isAddressPatternScalar) ?? true
        else {
            throw ChatError(
                .usage,
                "A mask is a nickname or nick@address, where * matches anything and ? one character (e.g. bob, guest*, *@10.0.0.7)."
            )
        }
        self.text = cleaned
        self.nick = nick
        self.address = address
    }

    public var description: String { text }

    /// True when the mask matches nothing but one exact nick (so it can also name an online user).
    public var isPlainNick: Bool { address == nil && !nick.contains("*") && !nick.contains("?") }

    public func matches(nick: String, account: String?, address: String) -> Bool {
        let nickMatches = Self.glob(self.nick, asciiLowercased(nick)) || account.map { Self.glob(self.nick, $0) } == true
        guard nickMatches else { return false }
        return self.address.map { Self.glob($0, asciiLowercased(address)) } ?? true
    }

    public static func == (lhs: Mask, rhs: Mask) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    private static func isNickPatternScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "0"..."9", "_", "-", "[", "]", "{", "}", "\\", "|", "^", "`", "*", "?": true
        default: false
        }
    }

    private static func isAddressPatternScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "0"..."9", ".", ":", "-", "*", "?": true
        default: false
        }
    }

    /// Glob matching with `*` and `?`, iterative with one backtrack point: linear for the patterns a mask
    /// can hold, however many stars.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let pattern = Array(pattern.utf8), text = Array(text.utf8)
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                p += 1
                t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

/// Durations as people type and read them: `90s`, `10m`, `2h`, `7d` (a bare number is minutes).
public enum Durations {
    /// The most a ban or mute can last before it needs no duration at all: a year.
    public static let maximumSeconds = 366 * 86_400

    public static func seconds(parsing raw: Substring) -> Int? {
        guard let last = raw.last else { return nil }
        let (digits, unit): (Substring, Int) =
            switch last {
            case "s": (raw.dropLast(), 1)
            case "m": (raw.dropLast(), 60)
            case "h": (raw.dropLast(), 3600)
            case "d": (raw.dropLast(), 86_400)
            case "0"..."9": (raw, 60)
            default: ("", 0)
            }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = Int(digits), number > 0,
            number <= maximumSeconds / unit
        else { return nil }
        return number * unit
    }

    /// "45 seconds", "10 minutes", "2 hours", "3 days": the largest whole unit, rounded down.
    public static func describe(seconds: Int) -> String {
        let (count, unit) =
            if seconds >= 86_400 { (seconds / 86_400, "day") } else if seconds >= 3600 { (seconds / 3600, "hour") } else if seconds >= 60 { (seconds / 60, "minute") } else { (max(seconds, 1), "second") }
        return count == 1 ? "1 \(unit)" : "\(count) \(unit)s"
    }
}

extension ModerationNotice {
    /// The notice in words, for text mode and the terminal client; `time` renders `until`.
    public func sentence(time: (Date) -> String) -> String {
        let whom = target
        let until = self.until.map { " until \(time($0))" } ?? ""
        let reason = self.reason.map { ": \($0)" } ?? ""
        guard let by else {
            return "The \(action == .unban ? "ban" : "mute") on \(whom) in \(room) has run out."
        }
        return switch action {
        case .ban: "\(by) banned \(whom) from \(room)\(until)\(reason)"
        case .unban: "\(by) lifted the ban on \(whom) in \(room)"
        case .mute: "\(by) muted \(whom) in \(room)\(until)\(reason)"
        case .unmute: "\(by) unmuted \(whom) in \(room)"
        case .op: "\(by) made \(whom) an operator of \(room)"
        case .deop: "\(by) took operator rights in \(room) from \(whom)"
        case .topicLock: "\(by) locked the topic of \(room): only operators can change it"
        case .topicUnlock: "\(by) unlocked the topic of \(room): anyone in it can change it"
        case .key: "\(by) set the key of \(room) to \(whom): joining needs it"
        case .unkey: "\(by) removed the key of \(room): anyone may join"
        case .modes: "\(by) " + Self.describe(modes: whom, room: room)
        case .limit: "\(by) limited \(room) to \(whom) members"
        case .unlimit: "\(by) lifted the member limit of \(room)"
        case .exempt: "\(by) let \(whom) into \(room) despite any ban"
        case .unexempt: "\(by) lifted the ban exception for \(whom) in \(room)"
        case .voice: "\(by) gave \(whom) a voice in \(room)"
        case .devoice: "\(by) took \(whom)'s voice in \(room)"
        }
    }
}

extension ModerationNotice {
    /// `+t-n` in words: "locked the topic of #room…; let anyone send to #room".
    static func describe(modes change: String, room: String) -> String {
        var phrases: [String] = []
        var adding = true
        for letter in change {
            switch (letter, adding) {
            case ("+", _): adding = true
            case ("-", _): adding = false
            case ("i", true): phrases.append("made \(room) invite only")
            case ("i", false): phrases.append("opened \(room) to anyone")
            case ("m", true): phrases.append("made \(room) moderated: only operators and those with a voice speak")
            case ("m", false): phrases.append("let everyone in \(room) speak")
            case ("n", true): phrases.append("let only members send to \(room)")
            case ("n", false): phrases.append("let anyone send to \(room), in it or not")
            case ("s", true): phrases.append("made \(room) secret: it is not listed")
            case ("s", false): phrases.append("made \(room) public")
            case ("t", true): phrases.append("locked the topic of \(room): only operators can change it")
            case ("t", false): phrases.append("unlocked the topic of \(room): anyone in it can change it")
            default: phrases.append("set mode \(adding ? "+" : "-")\(letter) on \(room)")
            }
        }
        return phrases.joined(separator: "; ")
    }
}

extension Restriction {
    /// One line of a ban list, e.g. `ban guest* by alice until 14:05: spam`.
    public func summary(time: (Date) -> String) -> String {
        "\(kind.rawValue) \(mask) by \(setBy)" + (until.map { " until \(time($0))" } ?? "") + (reason.map { ": \($0)" } ?? "")
    }
}
