/// The wire formats the bench speaks, so the same load can be pointed at Parley's text, JSON-lines and IRC
/// front doors, or at another IRC server. Each knows how to register, join a room, send, and recognise the
/// server's answers on the way.
public enum BenchProtocol: String, Sendable, CaseIterable {
    case text, json, irc

    /// What a fresh connection sends to register.
    func registration(nick: String) -> String {
        switch self {
        case .text: "\(nick)\n"
        case .json: #"{"type":"hello","version":1,"nick":"\#(nick)"}"# + "\n"
        case .irc: "NICK \(nick)\r\nUSER \(nick) 0 * :parley bench\r\n"
        }
    }

    func isRegistered(_ line: String) -> Bool {
        switch self {
        case .text: line.hasPrefix("*** In #general ")
        case .json: line.contains(#""type":"members""#) && line.contains(##""room":"#general""##)
        case .irc: line.split(separator: " ", maxSplits: 2).dropFirst().first == "001"
        }
    }

    func join(_ room: String) -> String {
        switch self {
        case .text: "/join \(room)\n"
        case .json: ##"{"type":"join","room":"\##(room)"}"## + "\n"
        case .irc: "JOIN \(room)\r\n"
        }
    }

    func isJoined(_ line: String, room: String) -> Bool {
        switch self {
        case .text: line.hasPrefix("*** In \(room) ")
        case .json: line.contains(#""type":"members""#) && line.contains(##""room":"\##(room)""##)
        case .irc:
            // The end of NAMES for this room: a server may join clients to other channels first (Parley puts
            // everyone in #general).
            {
                let words = line.split(separator: " ", maxSplits: 4)
                return words.count >= 4 && words[1] == "366" && words[3].lowercased() == room.lowercased()
            }()
        }
    }

    /// A refusal during registration or join, which ends the run with the server's own words.
    func isError(_ line: String) -> Bool {
        switch self {
        case .text: line.hasPrefix("!!! ")
        case .json: line.contains(#""type":"error""#)
        case .irc:
            // Error numerics are 4xx and 5xx, except 422 (no MOTD), which servers send in every welcome.
            line.hasPrefix("ERROR ")
                || line.split(separator: " ", maxSplits: 2).dropFirst().first.map { ($0.first == "4" || $0.first == "5") && $0 != "422" } == true
        }
    }

    func message(_ text: String, room: String) -> String {
        switch self {
        // Text mode sends to the current room, the one joined last.
        case .text: "\(text)\n"
        case .json: ##"{"type":"send","room":"\##(room)","text":"\##(text)"}"## + "\n"
        case .irc: "PRIVMSG \(room) :\(text)\r\n"
        }
    }

    /// What keeps the connection alive (IRC servers ping and drop whoever does not answer).
    func reply(to line: String) -> String? {
        guard self == .irc, line.hasPrefix("PING ") else { return nil }
        return "PONG " + line.dropFirst(5) + "\r\n"
    }
}
