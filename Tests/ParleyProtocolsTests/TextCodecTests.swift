import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import Testing

@Suite("TextCodec")
struct TextCodecTests {
    let codec = TextCodec()
    static let time = Date(timeIntervalSince1970: 1_700_000_000.75)

    /// The `[HH:MM] ` stamp for `time` in this machine's local time zone, computed independently.
    static var stamp: String {
        var seconds = time_t(1_700_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return "[" + String(format: "%02d:%02d", Int(parts.tm_hour), Int(parts.tm_min)) + "] "
    }

    private func text(_ event: ChatEvent, focused: Bool = true) -> String? {
        codec.encode(event, focused: focused).map { String(buffer: $0) }
    }

    private func message(
        from: String? = "alice", to target: ChatMessage.Target = .room("#rust"), kind: ChatMessage.Kind = .normal,
        _ text: String = "hello"
    ) -> ChatMessage {
        ChatMessage(id: 7, time: Self.time, from: from, target: target, kind: kind, text: text)
    }

    // MARK: Messages

    @Test("a message in the current room shows sender and text")
    func focusedMessage() {
        #expect(text(.message(message())) == Self.stamp + "<alice> hello\n")
    }

    @Test("a message in another room names the room")
    func unfocusedMessage() {
        #expect(text(.message(message()), focused: false) == Self.stamp + "#rust <alice> hello\n")
    }

    @Test("an action is written as * nick text")
    func action() {
        #expect(text(.message(message(kind: .action, "waves"))) == Self.stamp + "* alice waves\n")
        #expect(text(.message(message(kind: .action, "waves")), focused: false) == Self.stamp + "#rust * alice waves\n")
    }

    @Test("a private message is marked as such")
    func privateMessage() {
        #expect(text(.message(message(to: .user("bob"), "psst"))) == Self.stamp + "-> (private) <alice> psst\n")
        #expect(text(.message(message(to: .user("bob"), kind: .action, "winks"))) == Self.stamp + "-> (private) * alice winks\n")
    }

    @Test("server notices, to everyone or to a room")
    func serverNotice() {
        let everyone = message(from: nil, to: .everyone, kind: .notice, "restart at noon")
        #expect(text(.message(everyone)) == Self.stamp + "*** server notice: restart at noon\n")
        let room = message(from: nil, to: .room("#rust"), kind: .notice, "rust night")
        #expect(text(.message(room)) == Self.stamp + "*** server notice: rust night\n")
        #expect(text(.message(room), focused: false) == Self.stamp + "#rust *** server notice: rust night\n")
        #expect(text(.message(message(kind: .notice, "from a user"))) == Self.stamp + "-alice- from a user\n")
    }

    @Test("the time stamp has the [HH:MM] shape")
    func stampShape() throws {
        let line = try #require(text(.message(message())))
        #expect(line.range(of: #"^\[[0-2][0-9]:[0-5][0-9]\] <alice> hello\n$"#, options: .regularExpression) != nil)
    }

    @Test("the ack of a private message echoes it to the sender")
    func privateAck() {
        let ack = ChatEvent.ack(ref: nil, message: message(to: .user("bob"), "psst"))
        #expect(text(ack) == Self.stamp + "<- (private to bob) psst\n")
        let action = ChatEvent.ack(ref: "r", message: message(to: .user("bob"), kind: .action, "winks"))
        #expect(text(action) == Self.stamp + "<- (private to bob) * alice winks\n")
    }

    @Test("the ack of a room message shows nothing: the sender saw what they typed")
    func roomAck() {
        #expect(codec.encode(.ack(ref: nil, message: message())) == nil)
        #expect(codec.encode(.ack(ref: "1", message: message(from: nil, to: .everyone, kind: .notice, "x"))) == nil)
    }

    // MARK: Notices

    @Test("welcome")
    func welcome() {
        #expect(
            text(.welcome(nick: "alice", server: "parley.test"))
                == "*** Hello alice! Type /help for the commands; anything else you type goes to your current room.\n"
        )
    }

    @Test("joined")
    func joined() {
        #expect(text(.joined(room: "#rust", nick: "bob")) == "*** bob joined #rust\n")
        #expect(text(.joined(room: "#rust", nick: "bob"), focused: false) == "*** bob joined #rust\n")
    }

    @Test(
        "left, for every reason",
        arguments: [
            (LeaveReason.parted(nil), "*** bob left #rust\n"),
            (.parted("lunch"), "*** bob left #rust (lunch)\n"),
            (.quit(nil), "*** bob left #rust (quit)\n"),
            (.quit("bye all"), "*** bob left #rust (quit: bye all)\n"),
            (.connectionLost, "*** bob left #rust (connection lost)\n"),
            (.kicked(by: .server, reason: nil), "*** bob left #rust (kicked by the server operator)\n"),
            (.kicked(by: .server, reason: "spam"), "*** bob left #rust (kicked by the server operator: spam)\n"),
            (.sendQueueFull, "*** bob left #rust (too slow to keep up (send queue full))\n"),
            (.serverShutdown, "*** bob left #rust (server shutting down)\n"),
        ]
    )
    func left(_ reason: LeaveReason, _ expected: String) {
        #expect(text(.left(room: "#rust", nick: "bob", reason: reason)) == expected)
    }

    @Test("nick change")
    func nickChange() {
        #expect(text(.nickChanged(from: "alice", to: "alicia")) == "*** alice is now known as alicia\n")
    }

    @Test("members of a room, and everyone online")
    func members() {
        #expect(text(.members(room: "#rust", nicks: ["alice", "bob"])) == "*** In #rust (2): alice, bob\n")
        #expect(text(.members(room: nil, nicks: ["alice", "bob", "carol"])) == "*** Online (3): alice, bob, carol\n")
        #expect(text(.members(room: "#empty", nicks: [])) == "*** In #empty (0): \n")
    }

    @Test("rooms, one per line, with member counts and topics")
    func rooms() {
        let rooms = [
            RoomSummary(name: "#general", members: 1, topic: ""),
            RoomSummary(name: "#rust", members: 2, topic: "All about Rust"),
        ]
        #expect(
            text(.rooms(rooms)) == "*** Rooms (2):\n***   #general (1 member)\n***   #rust (2 members): All about Rust\n"
        )
        #expect(text(.rooms([])) == "*** Rooms (0):\n")
    }

    @Test("topic, empty and set")
    func topic() {
        #expect(text(.topic(room: "#rust", text: "", setBy: nil)) == "*** #rust has no topic. Set one with /topic #rust text\n")
        #expect(text(.topic(room: "#rust", text: "Rust talk", setBy: "alice")) == "*** Topic of #rust: Rust talk (set by alice)\n")
        let dated = text(.topic(room: "#rust", text: "Rust talk", setBy: "alice", setAt: Self.time))
        #expect(dated?.range(of: #"^\*\*\* Topic of #rust: Rust talk \(set by alice on \d\d-\d\d \d\d:\d\d\)\n$"#, options: .regularExpression) != nil, "\(dated ?? "")")
        #expect(text(.topic(room: "#rust", text: "Rust talk", setBy: nil)) == "*** Topic of #rust: Rust talk\n")
    }

    @Test("errors start with !!!")
    func error() {
        #expect(text(.error(ChatError(.noSuchNick, "Nobody called zed is online."), ref: "1")) == "!!! Nobody called zed is online.\n")
    }

    @Test("notice, shutdown and pong")
    func otherNotices() {
        #expect(text(.notice("#general is now your current room.")) == "*** #general is now your current room.\n")
        #expect(text(.shutdown(reason: "maintenance")) == "*** The server is shutting down (maintenance). Goodbye!\n")
        #expect(text(.shutdown(reason: nil)) == "*** The server is shutting down. Goodbye!\n")
        #expect(text(.currentRoom("#rust")) == "*** Your current room is now #rust.\n")
        #expect(text(.currentRoom(nil)) == "*** You are in no room now. Type /join #room to enter one.\n")
        #expect(text(.pong(ref: nil)) == "*** pong\n")
    }

    @Test("help lists every command with its usage, summary and aliases, aligned")
    func help() throws {
        let rendered = try #require(text(.help(TextCommands.table.map(\.help))))
        let lines = rendered.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "*** Commands:")
        #expect(lines.last == "")
        #expect(lines.dropLast().last == "*** Anything else you type is sent to your current room; start it with // to send a leading /.")
        #expect(lines.count == TextCommands.table.count + 3)
        for command in TextCommands.table {
            let row = try #require(lines.first { $0.hasPrefix("***   \(command.usage) ") }, "\(command.usage)")
            #expect(row.contains("  \(command.summary)"))
            for alias in command.aliases { #expect(row.contains("/\(alias)")) }
        }
        // Summaries start in one column.
        let width = TextCommands.table.map(\.usage.count).max()!
        #expect(lines.contains("***   /help" + String(repeating: " ", count: width - 5) + "  list the commands (also /?)"))
        #expect(lines.contains { $0.hasPrefix("***   /msg NICK text") && $0.hasSuffix("(also /whisper, /w, /query)") })
    }

    // MARK: Registration and decoding

    @Test("greeting and nickname prompt")
    func greeting() {
        #expect(String(buffer: codec.greeting(server: "parley.test")) == "*** Welcome to Parley on parley.test.\n*** Choose a nickname:\n")
        let error = ChatError(.nickTaken, "The nickname bob is taken; choose another.")
        #expect(String(buffer: codec.nicknamePrompt(after: error)) == "!!! The nickname bob is taken; choose another.\n*** Choose a nickname:\n")
    }

    @Test("lines are decoded as UTF-8, invalid bytes becoming U+FFFD")
    func decoding() {
        #expect(codec.string(from: ByteBuffer(string: "héllo 👋")) == "héllo 👋")
        #expect(codec.string(from: ByteBuffer(bytes: [0x61, 0xFF, 0x62, 0xC3])) == "a\u{FFFD}b\u{FFFD}")
    }
}
