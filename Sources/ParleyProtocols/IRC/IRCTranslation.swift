import Foundation
import ParleyCore

/// The pure part of the IRC door: IRC messages whose parameters need reading (MODE, CHATHISTORY, USER, the
/// targets of PRIVMSG) become chat requests, or the reply that refuses them. No state, no sockets: tested
/// like the JSON codec.
public enum IRCTranslation {
    /// One letter of a channel MODE line, read.
    public enum ModeStep: Equatable, Sendable {
        /// A change to make; `subject` is the nick, mask or key it names (for the numeric of a refusal).
        case moderate(Moderation, subject: String?)
        /// `+b` without a mask: the ban list.
        case listBans
        /// `MODE #room e`: the ban exceptions (348, 349).
        case listExceptions
        /// A key that cannot be one (empty, with a space or comma, too long): ERR_INVALIDMODEPARAM.
        case invalidKey(String)
        /// A member limit that is no positive number: ERR_INVALIDMODEPARAM.
        case invalidLimit(String)
        /// A letter Parley has no mode for: ERR_UNKNOWNMODE.
        case unknown(Character)
        /// Past `IRCCodec.maximumModes` changes the rest of the line is dropped, with one notice.
        case tooMany
    }

    /// `MODE #room <letters> <arguments…>` → the changes it asks for, in order. The on-or-off modes of the line
    /// (i, m, n, s, t) are one change, made and announced at once where the first of them stands; a letter that
    /// needs an argument and lacks one is skipped.
    public static func channelModes(_ letters: String, arguments: [String]) -> [ModeStep] {
        var steps: [ModeStep] = []
        var adding = true
        var arguments = arguments.makeIterator()
        var changes = 0
        var flags: (index: Int, on: RoomModes, off: RoomModes)?
        for letter in letters {
            if letter == "+" || letter == "-" {
                adding = letter == "+"
                continue
            }
            changes += 1
            guard changes <= IRCCodec.maximumModes else {
                steps.append(.tooMany)
                break
            }
            switch letter {
            case "b":
                guard let mask = arguments.next() else {
                    steps.append(.listBans)
                    continue
                }
                let parleyMask = parleyMask(fromIRC: mask)
                steps.append(.moderate(adding ? .ban(mask: parleyMask, seconds: nil, reason: nil) : .unban(mask: parleyMask), subject: mask))
            case "e":
                guard let mask = arguments.next() else {
                    steps.append(.listExceptions)
                    continue
                }
                let parleyMask = parleyMask(fromIRC: mask)
                steps.append(.moderate(adding ? .exempt(mask: parleyMask) : .unexempt(mask: parleyMask), subject: mask))
            case "o":
                guard let nick = arguments.next() else { continue }
                steps.append(.moderate(adding ? .op(nick: nick) : .deop(nick: nick), subject: nick))
            case "i", "m", "n", "s", "t":
                let mode = RoomModes(letters: String(letter))
                var current = flags ?? (steps.count, [], [])
                if adding { current.on.insert(mode); current.off.remove(mode) } else { current.off.insert(mode); current.on.remove(mode) }
                flags = current
            case "l":
                guard adding else {
                    steps.append(.moderate(.limit(nil), subject: nil))
                    continue
                }
                guard let text = arguments.next() else { continue }
                guard let limit = Int(text), (1...ChatState<Int>.maximumRoomLimit).contains(limit) else {
                    steps.append(.invalidLimit(text))
                    continue
                }
                steps.append(.moderate(.limit(limit), subject: nil))
            case "v":
                guard let nick = arguments.next() else { continue }
                steps.append(.moderate(adding ? .voice(nick: nick) : .devoice(nick: nick), subject: nick))
            case "k":
                // +k takes the key; -k may name it too (RFC 2812), which changes nothing.
                let key = arguments.next()
                guard adding else {
                    steps.append(.moderate(.key(nil), subject: nil))
                    continue
                }
                guard let key else { continue }
                guard isValidKey(key) else {
                    steps.append(.invalidKey(key))
                    continue
                }
                steps.append(.moderate(.key(key), subject: nil))
            default:
                steps.append(.unknown(letter))
            }
        }
        if let flags { steps.insert(.moderate(.modes(on: flags.on, off: flags.off), subject: nil), at: flags.index) }
        return steps
    }

    /// RFC 2812's key: 1 to 23 characters, no space (nor a comma, which separates keys in JOIN).
    public static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty && key.count <= ChatState<Int>.maximumKeyLength && !key.contains(" ") && !key.contains(",")
            && !key.unicodeScalars.contains { $0.value < 0x20 }
    }

    /// `nick!user@host` → Parley's `nick@host` (the user part means nothing here; a `*` host is dropped).
    public static func parleyMask(fromIRC mask: String) -> String {
        let nickPart = mask.split(separator: "!", maxSplits: 1).first.map(String.init) ?? mask
        let host = mask.split(separator: "@", maxSplits: 1).dropFirst().first.map(String.init)
        let nick = nickPart.split(separator: "@", maxSplits: 1).first.map(String.init) ?? nickPart
        guard let host, host != "*" else { return nick }
        return "\(nick)@\(host)"
    }

    /// USER's username and real name, cleaned: the username is one short word (shown in WHO and WHOIS), the
    /// real name free text like a reason. Nil when the real name is empty (ERR_NEEDMOREPARAMS).
    public static func identity(username: String, realName: String) -> Identity? {
        let realName = String(Sanitizer.trimmed(Sanitizer.text(realName)).prefix(100))
        guard !realName.isEmpty else { return nil }
        let word = username.unicodeScalars.filter { !" !@*,\u{0}\r\n".unicodeScalars.contains($0) && $0.value >= 0x20 }
        let user = String(String.UnicodeScalarView(word).prefix(10))
        return Identity(username: user.isEmpty ? nil : user, realName: realName)
    }

    /// A failed CHATHISTORY request: IRCv3's `FAIL CHATHISTORY <code> <context> :<text>`.
    public struct Failure: Error, Equatable, Sendable {
        public let code: String
        public let context: String
        public let text: String
    }

    /// draft/chathistory: LATEST, BEFORE, AFTER, BETWEEN and AROUND, by msgid (Parley's message ids) or
    /// timestamp, at most `IRCCodec.maximumHistoryPage` messages. Returns the target and the query.
    public static func chathistory(_ params: [String]) -> Result<(target: String, query: HistoryQuery), Failure> {
        func fail(_ context: String, _ text: String) -> Result<(target: String, query: HistoryQuery), Failure> {
            .failure(Failure(code: "INVALID_PARAMS", context: context, text: text))
        }
        guard params.count >= 3 else { return fail(params.first ?? "*", "Not enough parameters") }
        let subcommand = params[0].uppercased()
        let target = params[1]
        guard let count = params.last.flatMap({ Int($0) }), count > 0 else { return fail(subcommand, "The limit must be a positive number") }
        let limit = min(count, IRCCodec.maximumHistoryPage)
        func point(_ text: String) -> HistoryPoint? {
            let (kind, value) = (text.prefix { $0 != "=" }, text.drop { $0 != "=" }.dropFirst())
            switch kind {
            case "msgid": return Int64(value).map(HistoryPoint.id)
            case "timestamp": return Timestamps.parseISO8601(String(value)).map(HistoryPoint.time)
            default: return nil
            }
        }
        switch (subcommand, params.count) {
        case ("LATEST", 4) where params[2] == "*":
            return .success((target, .latest(limit)))
        case ("LATEST", 4), ("BEFORE", 4), ("AFTER", 4):
            guard let reference = point(params[2]) else { return fail(subcommand, "Unknown message reference") }
            let query: HistoryQuery =
                switch subcommand {
                case "BEFORE": .range(after: .id(0), before: reference, count: limit, newest: true)
                case "AFTER": .range(after: reference, before: .id(.max), count: limit, newest: false)
                default: .range(after: reference, before: .id(.max), count: limit, newest: true)
                }
            return .success((target, query))
        case ("AROUND", 4):
            guard let reference = point(params[2]) else { return fail(subcommand, "Unknown message reference") }
            return .success((target, .around(reference, count: limit)))
        case ("BETWEEN", 5):
            guard let first = point(params[2]), let second = point(params[3]) else { return fail(subcommand, "Unknown message reference") }
            // The first reference says where to start: from the newer end when it is the later one.
            switch (first, second) {
            case (.id(let a), .id(let b)) where a > b: return .success((target, .range(after: second, before: first, count: limit, newest: true)))
            case (.time(let a), .time(let b)) where a > b: return .success((target, .range(after: second, before: first, count: limit, newest: true)))
            case (.id, .id), (.time, .time): return .success((target, .range(after: first, before: second, count: limit, newest: false)))
            default: return fail(subcommand, "Both references must be of one kind")
            }
        default:
            return fail(subcommand, "Supported: LATEST, BEFORE, AFTER, BETWEEN, AROUND and TARGETS")
        }
    }

    /// `CHATHISTORY TARGETS timestamp=… timestamp=… limit`: the window, the limit, and whether it counts from the
    /// newer end (the later timestamp first, as BETWEEN).
    public static func chathistoryTargets(_ params: [String]) -> Result<(after: Date, before: Date, count: Int, newest: Bool), Failure> {
        func time(_ text: String) -> Date? {
            guard text.hasPrefix("timestamp=") else { return nil }
            return Timestamps.parseISO8601(String(text.dropFirst(10)))
        }
        guard params.count == 4, let first = time(params[1]), let second = time(params[2]) else {
            return .failure(Failure(code: "INVALID_PARAMS", context: "TARGETS", text: "TARGETS takes two timestamps and a limit"))
        }
        guard let count = Int(params[3]), count > 0 else {
            return .failure(Failure(code: "INVALID_PARAMS", context: "TARGETS", text: "The limit must be a positive number"))
        }
        return .success((min(first, second), max(first, second), min(count, IRCCodec.maximumHistoryPage), first > second))
    }

    /// Whether a PRIVMSG or NOTICE from `source` to `target` carrying `text` fits one 512-byte line as its
    /// recipients get it (`:source COMMAND target :text` with CR LF). One that does not is refused with
    /// ERR_INPUTTOOLONG rather than cut or split: the sender's client split what it could, and a recipient
    /// must never see half a line.
    public static func fitsRelayed(source: String, command: String, target: String, text: String) -> Bool {
        1 + source.utf8.count + 1 + command.utf8.count + 1 + target.utf8.count + 2 + text.utf8.count + 2 <= IRCMessage.maximumBodyBytes
    }
}
