import Foundation
import ParleyCore
import ParleyTerminal
import Testing

@Suite("ChatView")
struct ChatViewTests {
    typealias F = Fixture

    // MARK: - Start, welcome, rooms

    @Test("History of another day shows its date, and a line names each new day; today's messages show the time alone")
    func historyDates() throws {
        var view = F.view(rooms: ["#a"])
        let calendar = Calendar.current
        let today = try #require(calendar.date(from: DateComponents(year: 2026, month: 12, day: 6, hour: 9, minute: 30)))
        let yesterday = try #require(calendar.date(from: DateComponents(year: 2026, month: 12, day: 5, hour: 21, minute: 46)))
        view.now = { today.addingTimeInterval(3600) }
        let old = ChatMessage(id: 1, time: yesterday, from: "alice", target: .room("#a"), kind: .normal, text: "last night")
        let new = ChatMessage(id: 2, time: today, from: "alice", target: .room("#a"), kind: .normal, text: "this morning")
        view.apply(.history(room: "#a", messages: [old, new], ref: nil))
        let lines = view.texts(of: "#a").suffix(5)
        #expect(Array(lines) == [
            "*** History of #a:", "12-05 21:46 (history) <alice> last night", "--- Sunday 6 December 2026 ---",
            "09:30 (history) <alice> this morning", "*** End of history.",
        ])
        // A live message of the same day needs no new day line.
        view.apply(.message(ChatMessage(id: 3, time: today.addingTimeInterval(60), from: "carol", target: .room("#a"), kind: .normal, text: "hi")))
        #expect(view.texts(of: "#a").last == "09:31 <carol> hi")
    }

    @Test("Rejoining rooms the view still has (after a reconnect) keeps the current room")
    func rejoinKeepsCurrent() {
        var view = F.view(rooms: ["#a", "#b", "#c"])
        let switched = view.switchTo("#b")
        #expect(switched)
        view.apply(.welcome(nick: "bob", server: "srv"))
        for room in ["#a", "#b", "#c"] { view.apply(.joined(room: room, nick: "bob")) }
        #expect(view.currentRoomName == "#b")
        // A room joined for the first time still becomes current.
        view.apply(.joined(room: "#d", nick: "bob"))
        #expect(view.currentRoomName == "#d")
    }

    @Test("The member list marks room operators and voiced members")
    func membersMarked() {
        var view = F.view(rooms: ["#a"])
        view.apply(.members(room: "#a", nicks: ["ann", "bob", "carol"], operators: ["ann"], voiced: ["carol"]))
        #expect(view.texts(of: "#a").last?.contains("@ann") == true)
        #expect(view.texts(of: "#a").last?.contains("+carol") == true)
        #expect(view.texts(of: "#a").last?.contains("@bob") == false)
    }

    @Test("Scrollback: scrolling back holds the screen still as lines come in; at the top the window asks for older history and puts it above")
    func scrollingBack() throws {
        var view = F.view(rooms: ["#a"])
        for id in 10...20 { view.apply(.message(F.message(from: "alice", to: .room("#a"), "m\(id)", id: Int64(id)))) }
        let held = view.currentRoom.lines.count
        view.scroll(by: 5)
        #expect(view.currentRoom.scrolledUp == 5)
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "m21", id: 21)))
        #expect(view.currentRoom.scrolledUp == 6)  // the same lines stay on screen
        view.scroll(by: 1000)
        #expect(view.currentRoom.scrolledUp == held)  // the first line, at most
        let request = try #require(view.olderHistoryRequest())
        #expect(request == .history(room: "#a", .before(10, count: 50)))
        view.awaitingOlder(ref: "c7")
        #expect(view.olderHistoryRequest() == nil)  // one at a time
        view.apply(.history(room: "#a", messages: [F.message(from: "carol", to: .room("#a"), "m8", id: 8), F.message(from: "carol", to: .room("#a"), "m9", id: 9)], ref: "c7"))
        #expect(view.texts(of: "#a").prefix(2).map { $0.hasSuffix("m8") && $0.contains("(history)") || $0.hasSuffix("m9") } == [true, true])
        #expect(view.olderHistoryRequest() == .history(room: "#a", .before(8, count: 50)))
        view.awaitingOlder(ref: "c8")
        view.apply(.history(room: "#a", messages: [], ref: "c8"))
        #expect(view.texts(of: "#a").first == "*** Nothing older.")
        #expect(view.olderHistoryRequest() == nil)
        view.scrollToBottom()
        #expect(view.currentRoom.scrolledUp == 0)
    }

    @Test("A request for older history that is lost with the connection, or refused, may be made again; ignored nicks stay out of history")
    func olderHistoryAgain() throws {
        var view = F.view(rooms: ["#a"])
        view.ignored = ["eve"]
        view.apply(.history(room: "#a", messages: [
            F.message(from: "eve", to: .room("#a"), "spam", id: 4), F.message(from: "alice", to: .room("#a"), "hello", id: 5),
        ], ref: nil))
        let spamShown = view.texts(of: "#a").contains { $0.contains("spam") }
        #expect(!spamShown)
        view.scrollToTop()
        let request = try #require(view.olderHistoryRequest())
        view.awaitingOlder(ref: "c1")
        view.connectionLost()
        #expect(view.olderHistoryRequest() == request)
        view.awaitingOlder(ref: "c2")
        view.apply(.error(ChatError(.historyUnavailable, "later"), ref: "c2"))
        #expect(view.olderHistoryRequest() == request)
    }

    @Test("After a reconnect, a room's replay says how many messages were missed")
    func missedAfterReconnect() {
        var view = F.view(rooms: ["#a"])
        view.expectMissed(in: ["#A"])
        let missed = [F.message(from: "alice", to: .room("#a"), "while away", id: 9), F.message(from: "alice", to: .room("#a"), "and more", id: 10)]
        view.apply(.history(room: "#a", messages: missed, ref: nil))
        #expect(view.texts(of: "#a").suffix(4).first == "*** Missed in #a while disconnected: 2 messages")
        // Only the first replay after the reconnect.
        view.apply(.history(room: "#a", messages: [F.message(from: "alice", to: .room("#a"), "later", id: 11)], ref: nil))
        #expect(view.texts(of: "#a").suffix(3).first == "*** History of #a:")
        // In a window not being read, what was missed counts as unread; a join's ordinary replay does not.
        var other = F.view(rooms: ["#a", "#b"])
        _ = other.switchTo("#b")
        other.expectMissed(in: ["#a", "#b"])
        other.apply(.history(room: "#a", messages: missed, ref: nil))
        #expect(other.room("#a")?.unread == 2)
        other.apply(.history(room: "#a", messages: [F.message(from: "alice", to: .room("#a"), "later", id: 11)], ref: nil))
        #expect(other.room("#a")?.unread == 2)
    }

    @Test("/find shows the window's lines that contain the text, highlighted, without regard to case; earlier results are not searched again")
    func find() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "the Build is green", id: 1)))
        view.apply(.message(F.message(from: "carol", to: .room("#a"), "lunch?", id: 2)))
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "build 2 failed", id: 3)))
        #expect(view.find("BUILD") == 2)
        let lines = view.currentRoom.lines.suffix(3)
        #expect(lines.map(\.plainText) == ["*** 2 lines contain \"BUILD\":", "\(F.stamp)<alice> the Build is green", "\(F.stamp)<alice> build 2 failed"])
        #expect(lines.dropFirst().first?.spans.contains(Span("Build", .mention)) == true)
        #expect(view.find("build") == 2)  // not 4
        #expect(view.find("nowhere") == 0)
        #expect(view.lastLine?.plainText == "*** Nothing in this window contains \"nowhere\".")
    }

    @Test("A mention or a private message leaves a notification text for the client; other messages none")
    func notifications() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "hello all", id: 1)))
        #expect(view.takeNotification() == nil)
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "bob: look", id: 2)))
        #expect(view.takeNotification() == "alice in #a: bob: look")
        #expect(view.takeNotification() == nil)
        view.apply(.message(F.message(from: "carol", to: .user("bob"), "psst", id: 3)))
        #expect(view.takeNotification() == "carol (private): psst")
        #expect(ChatView.desktopNotification("carol (private): psst") == "\u{1B}]9;carol (private): psst\u{7}\u{1B}]777;notify;Parley;carol (private): psst\u{7}")
        // Nothing in the text can end the sequence or split OSC 777's fields.
        #expect(ChatView.desktopNotification("a\u{7}b\u{1B}]0;x\u{9C}c;d") == "\u{1B}]9;ab]0xcd\u{7}\u{1B}]777;notify;Parley;ab]0xcd\u{7}")
    }

    @Test("Ignored nicks' messages are not shown; the timestamp follows the configured format")
    func ignoreAndTimestamp() {
        var view = F.view(rooms: ["#a"])
        view.ignored = ["spammer"]
        view.apply(.message(F.message(from: "Spammer", to: .room("#a"), "buy now", id: 1)))
        let ignoredShown = view.texts(of: "#a").contains { $0.contains("buy now") }
        #expect(!ignoredShown)
        view.timestampFormat = "[%H.%M]"
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "hi", id: 2)))
        #expect(view.lastLine?.plainText == "[\(F.stamp.dropLast().replacing(":", with: "."))] <alice> hi")
    }

    @Test("/history asked for shows every message, even those already seen")
    func askedHistory() {
        var view = F.view(rooms: ["#a"])
        let message = F.message(from: "alice", to: .room("#a"), "seen before", id: 5)
        view.apply(.message(message))
        view.apply(.history(room: "#a", messages: [message], ref: "c3"))
        #expect(view.texts(of: "#a").suffix(3).first == "*** History of #a:")
        view.apply(.history(room: "#a", messages: [], ref: "c4"))
        #expect(view.texts(of: "#a").last == "*** No history in #a.")
    }

    @Test("A new view has only the status buffer and is connecting")
    func initial() {
        let view = ChatView(nick: "bob", server: "srv")
        #expect(view.rooms.map(\.name) == [ChatView.statusName])
        #expect(view.current == 0)
        #expect(view.currentRoomName == nil)
        #expect(view.joinedRooms == [])
        #expect(view.connection == .connecting)
        #expect(view.scrollback == 2000)
    }

    @Test("welcome sets nick, server and the connection, and says so in the status buffer")
    func welcome() {
        var view = ChatView(nick: "bob", server: "localhost:7000")
        #expect(view.apply(.welcome(nick: "bob_", server: "chat.example")) == false)
        #expect(view.nick == "bob_")
        #expect(view.server == "chat.example")
        #expect(view.connection == .connected)
        #expect(view.texts(of: ChatView.statusName) == ["*** Connected to chat.example as bob_."])
        #expect(view.lastLine?.spans.map(\.style) == [.dim])
    }

    @Test("Joining a room makes it current and adds the user to its members")
    func joinedSelf() {
        var view = F.view()
        view.apply(.joined(room: "#rust", nick: "bob"))
        #expect(view.joinedRooms == ["#rust"])
        #expect(view.currentRoomName == "#rust")
        #expect(view.currentRoom.members == ["bob"])
        #expect(view.texts(of: "#rust") == ["*** bob joined #rust"])
        #expect(view.lastLine?.spans.map(\.style) == [.dim])
    }

    @Test("Someone else joining adds a member (once) and a dimmed line, without changing the current room")
    func joinedOther() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.joined(room: "#a", nick: "alice"))
        view.apply(.joined(room: "#A", nick: "ALICE"))  // names are case-insensitive
        #expect(view.currentRoomName == "#b")
        #expect(view.room("#a")?.members == ["bob", "alice"])
        #expect(view.texts(of: "#a").last == "*** ALICE joined #A")
        #expect(view.room("#a")?.unread == 0)  // joins do not count as unread
    }

    @Test("members replaces a room's member list; without a room it lists everyone online")
    func members() {
        var view = F.view(rooms: ["#a"])
        view.apply(.members(room: "#a", nicks: ["alice", "bob", "carol"]))
        #expect(view.currentRoom.members == ["alice", "bob", "carol"])
        #expect(view.texts(of: "#a").last == "*** In #a (3): alice, bob, carol")
        view.apply(.members(room: nil, nicks: ["alice", "bob"]))
        #expect(view.texts(of: "#a").last == "*** Online (2): alice, bob")
    }

    @Test("Someone leaving is removed from the members with the reason shown", arguments: [
        (LeaveReason.parted(nil), "*** Alice left #a"),
        (.parted("lunch"), "*** Alice left #a (lunch)"),
        (.quit(nil), "*** Alice left #a (quit)"),
        (.quit("bye"), "*** Alice left #a (quit: bye)"),
        (.connectionLost, "*** Alice left #a (connection lost)"),
        (.kicked(by: .user("op"), reason: "spam"), "*** Alice left #a (kicked by op: spam)"),
    ])
    func leftOther(reason: LeaveReason, line: String) {
        var view = F.view(rooms: ["#a"])
        view.apply(.joined(room: "#a", nick: "alice"))
        view.apply(.left(room: "#a", nick: "Alice", reason: reason))
        #expect(view.currentRoom.members == ["bob"])
        #expect(view.texts(of: "#a").last == line)
        #expect(view.lastLine?.spans.map(\.style) == [.dim])
    }

    @Test("A leave for a room the client is not in is ignored")
    func leftUnknownRoom() {
        var view = F.view(rooms: ["#a"])
        let before = view.texts(of: "#a")
        view.apply(.left(room: "#zzz", nick: "alice", reason: .parted(nil)))
        #expect(view.texts(of: "#a") == before)
        #expect(view.joinedRooms == ["#a"])
    }

    @Test("Leaving the current room removes it and selects a neighbour")
    func leftSelfCurrent() {
        var view = F.view(rooms: ["#a", "#b", "#c"])
        view.switchTo("#b")
        view.apply(.left(room: "#b", nick: "bob", reason: .parted(nil)))
        #expect(view.joinedRooms == ["#a", "#c"])
        #expect(view.currentRoomName == "#a")
        #expect(view.texts(of: "#a").last == "*** You left #b.")

        view.apply(.left(room: "#a", nick: "bob", reason: .parted(nil)))
        #expect(view.joinedRooms == ["#c"])
        #expect(view.currentRoomName == "#c")  // the first room left: wraps to the last one

        view.apply(.left(room: "#c", nick: "bob", reason: .parted(nil)))
        #expect(view.joinedRooms == [])
        #expect(view.currentRoomName == nil)
        #expect(view.texts(of: ChatView.statusName).last == "*** You left #c.")
    }

    @Test("Leaving another room keeps the current one")
    func leftSelfOther() {
        var view = F.view(rooms: ["#a", "#b", "#c"])
        view.apply(.left(room: "#a", nick: "bob", reason: .parted(nil)))
        #expect(view.joinedRooms == ["#b", "#c"])
        #expect(view.currentRoomName == "#c")
        view.switchTo("#b")
        view.apply(.left(room: "#c", nick: "bob", reason: .kicked(by: .user("op"), reason: nil)))
        #expect(view.currentRoomName == "#b")
    }

    @Test("The room that becomes current after leaving has no unread count or mention left")
    func leftSelfResetsNewCurrent() {
        // Leaving the current room selects the room the user lands in like a switch does, so its unread count
        // and mention flag are cleared and do not show in the status line after the next /join.
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "bob: ping")))
        #expect(view.room("#a")?.unread == 1)
        #expect(view.room("#a")?.mentioned == true)
        view.apply(.left(room: "#b", nick: "bob", reason: .parted(nil)))
        #expect(view.currentRoomName == "#a")
        #expect(view.currentRoom.unread == 0)
        #expect(view.currentRoom.mentioned == false)
    }

    @Test("A nick change renames members and is shown in the rooms they are in")
    func nickChangedOther() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.joined(room: "#a", nick: "alice"))
        view.apply(.nickChanged(from: "Alice", to: "alicia"))
        #expect(view.room("#a")?.members == ["bob", "alicia"])
        #expect(view.texts(of: "#a").last == "*** Alice is now known as alicia")
        #expect(view.texts(of: "#b").last == "*** bob joined #b")  // alice is not in #b
    }

    @Test("The user's own nick change updates the nick")
    func nickChangedSelf() {
        var view = F.view(rooms: ["#a"])
        view.apply(.nickChanged(from: "BOB", to: "robert"))
        #expect(view.nick == "robert")
        #expect(view.currentRoom.members == ["robert"])
        #expect(view.texts(of: "#a").last == "*** BOB is now known as robert")
    }

    @Test("Topics: set, set by someone, and none")
    func topic() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.topic(room: "#a", text: "Rust things", setBy: "alice"))
        #expect(view.texts(of: "#a").last == "*** Topic of #a: Rust things (set by alice)")
        view.apply(.topic(room: "#b", text: "hello", setBy: nil))
        #expect(view.texts(of: "#b").last == "*** Topic of #b: hello")
        view.apply(.topic(room: "#b", text: "", setBy: nil))
        #expect(view.texts(of: "#b").last == "*** #b has no topic")
        #expect(view.room("#a")?.unread == 0)
    }

    @Test("Errors go to the current room in the error style")
    func error() {
        var view = F.view(rooms: ["#a"])
        view.apply(.error(ChatError(.noSuchNick, "No such nick: zed."), ref: "c1"))
        #expect(view.lastLine == StyledLine([Span("!!! No such nick: zed.", .error)]))
    }

    @Test("Notices, shutdown, room lists and help are dimmed system lines")
    func systemLines() {
        var view = F.view(rooms: ["#a"])
        view.apply(.notice("Slow down."))
        #expect(view.lastLine == StyledLine([Span("*** Slow down.", .dim)]))
        view.apply(.shutdown(reason: "maintenance"))
        #expect(view.texts(of: "#a").last == "*** The server is shutting down (maintenance).")
        view.apply(.rooms([RoomSummary(name: "#a", members: 3, topic: "hi"), RoomSummary(name: "#b", members: 1, topic: "")]))
        #expect(view.texts(of: "#a").suffix(3) == ["*** Rooms (2):", "***   #a (3): hi", "***   #b (1)"])
        view.apply(.help([CommandHelp(usage: "/join #room", summary: "join a room", aliases: ["/j"])]))
        #expect(view.texts(of: "#a").last == "***   /join #room  join a room")
        #expect(view.currentRoom.lines.allSatisfy { $0.spans.allSatisfy { $0.style == .dim } })
    }

    @Test("system, pong and ack")
    func systemAndSilentEvents() {
        var view = F.view(rooms: ["#a"])
        let count = view.currentRoom.lines.count
        view.apply(.pong(ref: nil))
        view.apply(.ack(ref: "c1", message: F.message(from: "bob", to: .room("#a"), "hi")))
        #expect(view.currentRoom.lines.count == count)
        view.system("Reconnecting…")
        #expect(view.lastLine == StyledLine([Span("*** Reconnecting…", .dim)]))
    }

    // MARK: - Messages

    @Test("A room message: local time stamp, the nick in its colour, then the text")
    func roomMessage() {
        var view = F.view(rooms: ["#a"])
        let ring = view.apply(.message(F.message(from: "alice", to: .room("#a"), "hello there")))
        #expect(ring == false)
        #expect(view.lastLine?.spans == [
            Span(F.stamp, .dim), Span("<alice> ", .nick(ChatView.colour(of: "alice"))), Span("hello there"),
        ])
    }

    @Test("The time stamp is HH:MM in local time")
    func stampFormat() throws {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "x")))
        let stamp = try #require(view.lastLine?.spans.first?.text)
        let digits = Array(stamp)
        #expect(digits.count == 6 && digits[2] == ":" && digits[5] == " ")
        #expect([0, 1, 3, 4].allSatisfy { digits.count == 6 && digits[$0].isASCII && digits[$0].isNumber })
        #expect(stamp == F.stamp)
    }

    @Test("Own messages recorded with sent() use the own style")
    func ownMessage() {
        var view = F.view(rooms: ["#a", "#b"])
        view.sent(F.message(from: "bob", to: .room("#a"), "my words"))
        #expect(view.room("#a")?.lines.last?.spans == [Span(F.stamp, .dim), Span("<bob> ", .own), Span("my words")])
        #expect(view.room("#a")?.unread == 0)  // own lines never count as unread
        view.sent(F.message(from: "bob", to: .room("#b"), "waves", kind: .action))
        #expect(view.lastLine?.spans == [Span(F.stamp, .dim), Span("* bob ", .own), Span("waves")])
    }

    @Test("Own messages differ from others' in style")
    func ownVersusOther() {
        var view = F.view(rooms: ["#a"])
        view.sent(F.message(from: "bob", to: .room("#a"), "mine"))
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "theirs")))
        let styles = view.currentRoom.lines.suffix(2).map { $0.spans[1].style }
        #expect(styles[0] == .own)
        #expect(styles[1] != .own)
    }

    @Test("/me actions are shown as \"* nick text\"")
    func action() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "waves", kind: .action)))
        #expect(view.lastLine?.spans == [Span(F.stamp, .dim), Span("* alice ", .nick(ChatView.colour(of: "alice"))), Span("waves")])
    }

    @Test("A private message is marked \"-> (private)\" and rings the bell")
    func privateMessage() {
        var view = F.view(rooms: ["#a"])
        let ring = view.apply(.message(F.message(from: "alice", to: .user("bob"), "psst")))
        #expect(ring)
        view.switchTo("alice")
        #expect(view.lastLine?.spans == [
            Span(F.stamp, .dim), Span("-> (private) ", .privateMessage), Span("<alice> ", .nick(ChatView.colour(of: "alice"))),
            Span("psst"),
        ])
        #expect(view.lastLine?.plainText == "\(F.stamp)-> (private) <alice> psst")
    }

    @Test("A private action")
    func privateAction() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .user("bob"), "nods", kind: .action)))
        view.switchTo("alice")
        #expect(view.lastLine?.plainText == "\(F.stamp)-> (private) * alice nods")
        #expect(view.lastLine?.spans[1].style == .privateMessage)
    }

    @Test("An own private message is marked with its recipient")
    func ownPrivate() {
        var view = F.view(rooms: ["#a"])
        view.sent(F.message(from: "bob", to: .user("alice"), "psst"))
        view.switchTo("alice")
        #expect(view.lastLine?.spans == [Span(F.stamp, .dim), Span("<- (private to alice) ", .privateMessage), Span("psst")])
        view.sent(F.message(from: "bob", to: .user("alice"), "winks", kind: .action))
        #expect(view.lastLine?.plainText == "\(F.stamp)<- (private to alice) * bob winks")
    }

    @Test("A private conversation has a window of its own: opened by a message, unread and marked, not made current; /query opens and selects it, /close closes it; it follows a nick change")
    func conversationWindows() throws {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "alice", to: .user("bob"), "psst")))
        #expect(view.currentRoomName == "#b")
        #expect(view.texts(of: "#b").last == "*** Private conversation with alice: window 3 (Alt+3).")
        #expect(view.texts(of: "alice").last?.hasSuffix("psst") == true)
        let window = try #require(view.room("alice"))
        #expect(window.unread == 1 && window.mentioned)
        #expect(view.joinedRooms == ["#a", "#b"])  // not a room to rejoin
        // Own messages go to the window too; a second message opens nothing new.
        view.sent(F.message(from: "bob", to: .user("alice"), "hi", id: 2))
        #expect(view.texts(of: "alice").last?.hasSuffix("hi") == true)
        #expect(view.rooms.count == 4)
        view.openConversation(with: "carol")
        #expect(view.currentConversation == "carol" && view.currentRoomName == nil && view.currentWindowName == "carol")
        view.apply(.nickChanged(from: "alice", to: "alicia"))
        #expect(view.room("alicia") != nil && view.room("alice") == nil)
        let closed = view.closeConversation()
        #expect(closed)
        #expect(view.room("carol") == nil && view.currentWindowName != "carol")
        view.switchTo("#a")
        let closedRoom = view.closeConversation()
        #expect(!closedRoom)  // /close is not /part
    }

    @Test("A server notice is dimmed and marked -server-")
    func serverNotice() {
        var view = F.view(rooms: ["#a"])
        let ring = view.apply(.message(F.message(from: nil, to: .everyone, "restart in 5 minutes", kind: .notice)))
        #expect(ring == false)
        #expect(view.lastLine?.spans == [Span(F.stamp, .dim), Span("-server- restart in 5 minutes", .dim)])
    }

    @Test("A message for a room the client is not in goes to the current room")
    func unknownRoomMessage() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .room("#elsewhere"), "hi")))
        #expect(view.texts(of: "#a").last == "\(F.stamp)<alice> hi")
    }

    // MARK: - Mentions and unread counts

    @Test("A mention of the user's nick is highlighted and rings the bell", arguments: [
        "bob: hi", "hey bob", "hey Bob!", "@BOB look", "(bob)", "bob",
    ])
    func mention(text: String) {
        var view = F.view(rooms: ["#a"])
        let outcome = view.apply(.message(F.message(from: "alice", to: .room("#a"), text)))
        #expect(outcome)
        let styles = view.lastLine?.spans.map(\.style)
        #expect(styles == [.dim, .mention, .mention])
    }

    @Test("Not a mention: a longer word, someone else's nick, or the user's own message", arguments: [
        ("alice", "bobby is here"), ("alice", "kabob"), ("alice", "bob2"), ("alice", "hi carol"), ("bob", "I am bob"),
        ("BOB", "me, bob"),
    ])
    func notMention(from: String, text: String) {
        var view = F.view(rooms: ["#a"])
        #expect(view.apply(.message(F.message(from: from, to: .room("#a"), text))) == false)
        #expect(view.lastLine?.spans.contains { $0.style == .mention } == false)
    }

    @Test("A mention in an action is highlighted too")
    func mentionAction() {
        var view = F.view(rooms: ["#a"])
        let outcome = view.apply(.message(F.message(from: "alice", to: .room("#a"), "pokes bob", kind: .action)))
        #expect(outcome)
        #expect(view.lastLine?.spans.map(\.style) == [.dim, .mention, .mention])
    }

    @Test("A message in another room counts as unread; a mention there marks it mentioned")
    func unreadAndMentioned() throws {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "one")))
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "two", kind: .action)))
        var a = try #require(view.room("#a"))
        #expect(a.unread == 2)
        #expect(a.mentioned == false)

        let outcome = view.apply(.message(F.message(from: "alice", to: .room("#a"), "bob, look")))
        #expect(outcome)
        a = try #require(view.room("#a"))
        #expect(a.unread == 3)
        #expect(a.mentioned)

        // Messages in the current room never count.
        view.apply(.message(F.message(from: "alice", to: .room("#b"), "bob: here")))
        #expect(view.room("#b")?.unread == 0)
        #expect(view.room("#b")?.mentioned == false)
    }

    @Test("Switching to a room resets its unread count and mention")
    func switchResetsUnread() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "bob!")))
        let outcome = view.switchTo("#A")
        #expect(outcome)
        #expect(view.currentRoomName == "#a")
        #expect(view.currentRoom.unread == 0)
        #expect(view.currentRoom.mentioned == false)
    }

    @Test("User notices do not count as unread")
    func userNoticeNotCounted() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "fyi", kind: .notice)))
        #expect(view.room("#a")?.unread == 0)
    }

    // MARK: - Switching

    @Test("switchTo a room the client is not in fails and changes nothing")
    func switchUnknown() {
        var view = F.view(rooms: ["#a", "#b"])
        #expect(view.switchTo("#zzz") == false)
        #expect(view.switchTo(ChatView.statusName) == false)
        #expect(view.currentRoomName == "#b")
    }

    @Test("switchTo(number:) selects the Nth joined room and ignores numbers out of range")
    func switchNumber() {
        var view = F.view(rooms: ["#a", "#b", "#c"])
        view.switchTo(number: 1)
        #expect(view.currentRoomName == "#a")
        view.switchTo(number: 3)
        #expect(view.currentRoomName == "#c")
        view.switchTo(number: 0)
        #expect(view.currentRoomName == "#c")
        view.switchTo(number: 4)
        #expect(view.currentRoomName == "#c")
        view.switchTo(number: 9)
        #expect(view.currentRoomName == "#c")
    }

    @Test("next and previous wrap around the joined rooms")
    func nextPrevious() {
        var view = F.view(rooms: ["#a", "#b", "#c"])
        view.next()
        #expect(view.currentRoomName == "#a")
        view.next()
        #expect(view.currentRoomName == "#b")
        view.previous()
        #expect(view.currentRoomName == "#a")
        view.previous()
        #expect(view.currentRoomName == "#c")
    }

    @Test("next and previous reset the unread count of the room they select")
    func nextResetsUnread() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "x")))
        view.next()
        #expect(view.currentRoomName == "#a")
        #expect(view.currentRoom.unread == 0)
    }

    @Test("next and previous do nothing without rooms; with one room they stay")
    func nextPreviousFew() {
        var none = F.view()
        none.next()
        none.previous()
        #expect(none.current == 0)
        var one = F.view(rooms: ["#a"])
        one.next()
        #expect(one.currentRoomName == "#a")
        one.previous()
        #expect(one.currentRoomName == "#a")
    }

    // MARK: - Completion candidates

    @Test("Completion candidates: commands for /, rooms for #, else the current room's nicks but the user's own")
    func completions() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.members(room: "#b", nicks: ["alice", "Bob", "carol"]))
        #expect(view.completions(for: "/j", commands: ["/join", "/me"]) == ["/join", "/me"])
        #expect(view.completions(for: "#", commands: []) == ["#a", "#b"])
        #expect(view.completions(for: "al", commands: []) == ["alice", "carol"])
    }

    // MARK: - Colours

    @Test("A nick's colour is stable, case-insensitive and in range")
    func colour() {
        let nicks = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "漢字", ""]
        for nick in nicks {
            let colour = ChatView.colour(of: nick)
            #expect((0..<Style.nickColours).contains(colour))
            #expect(ChatView.colour(of: nick) == colour)
            #expect(ChatView.colour(of: nick.uppercased()) == colour)
        }
        #expect(ChatView.colour(of: "Alice") == ChatView.colour(of: "aLiCe"))
        #expect(Set(nicks.map(ChatView.colour(of:))).count > 1)
    }

    @Test("The same nick gets the same colour in messages in every room")
    func colourInLines() {
        var view = F.view(rooms: ["#a", "#b"])
        view.apply(.message(F.message(from: "Alice", to: .room("#a"), "x")))
        view.apply(.message(F.message(from: "alice", to: .room("#b"), "y")))
        #expect(view.room("#a")?.lines.last?.spans[1].style == view.room("#b")?.lines.last?.spans[1].style)
    }

    // MARK: - Relayed text is text

    @Test("Escape sequences and control characters in relayed text are stripped", arguments: [
        ("\u{1B}[2Jboom", "boom"),
        ("\u{1B}]0;pwned\u{7}title", "title"),
        ("a\u{1B}[31mred\u{1B}[0m", "ared"),
        ("bell\u{7}\u{8}", "bell"),
        ("\u{9B}2Jcsi", "csi"),
        ("tab\there", "tab here"),
    ])
    func sanitized(raw: String, shown: String) {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .room("#a"), raw)))
        #expect(view.lastLine?.spans.last?.text == shown)
    }

    @Test("Escapes in nicks, topics, reasons, notices and errors are stripped too")
    func sanitizedElsewhere() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "ev\u{1B}[8mil", to: .room("#a"), "hi")))
        view.apply(.message(F.message(from: "ev\u{1B}[8mil", to: .user("bob"), "hi", kind: .action)))
        view.apply(.topic(room: "#a", text: "\u{1B}[2Jtopic", setBy: "x\u{1B}[1my"))
        view.apply(.joined(room: "#a", nick: "m\u{1B}[5mallory"))
        view.apply(.left(room: "#a", nick: "m\u{1B}[5mallory", reason: .parted("\u{1B}c reset")))
        view.apply(.notice("\u{1B}[?1049hnotice"))
        view.apply(.error(ChatError(.usage, "\u{1B}[2Jerr"), ref: nil))
        view.apply(.members(room: "#a", nicks: ["a\u{1B}[1mb"]))
        view.apply(.shutdown(reason: "\u{1B}]2;x\u{7}now"))
        view.apply(.nickChanged(from: "bob", to: "b\u{1B}[3mob"))
        for line in view.currentRoom.lines {
            let hasControlCharacter = line.plainText.unicodeScalars.contains { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) }
            #expect(!hasControlCharacter, "\(line.plainText)")
        }
        #expect(view.currentRoom.lines.map(\.plainText).contains("*** Topic of #a: topic (set by xy)"))
    }

    @Test("The server's welcome and help text are shown as text too")
    func sanitizedWelcomeAndHelp() {
        // Like every other server-supplied string, the welcome's server and nick (kept for the status line) and
        // the help's usage and summary go through clean(); so does the user's own new nick.
        var view = ChatView(nick: "bob", server: "srv")
        view.apply(.welcome(nick: "b\u{1B}[1mob", server: "evil\u{1B}]0;pwned\u{7}"))
        view.apply(.help([CommandHelp(usage: "/x\u{1B}[2J", summary: "\u{1B}[31mred", aliases: [])]))
        for line in view.currentRoom.lines {
            #expect(!line.plainText.contains("\u{1B}"), "\(line.plainText.debugDescription)")
        }
        #expect(view.currentRoom.lines.map(\.plainText) == ["*** Connected to evil as bob.", "***   /x  red"])
        #expect(view.nick == "bob")
        #expect(view.server == "evil")

        view.apply(.nickChanged(from: "bob", to: "rob\u{1B}]0;t\u{7}ert"))
        #expect(view.nick == "robert")
    }

    // MARK: - Scrollback

    @Test("The scrollback of a room is bounded")
    func scrollback() {
        var view = F.view(rooms: ["#a"], scrollback: 5)
        for index in 1...20 {
            view.apply(.message(F.message(from: "alice", to: .room("#a"), "line \(index)", id: Int64(index))))
        }
        #expect(view.currentRoom.lines.count == 5)
        #expect(view.currentRoom.lines.first?.spans.last?.text == "line 16")
        #expect(view.currentRoom.lines.last?.spans.last?.text == "line 20")
    }

    @Test("clearCurrent empties only the current room")
    func clear() {
        var view = F.view(rooms: ["#a", "#b"])
        view.clearCurrent()
        #expect(view.currentRoom.lines.isEmpty)
        #expect(view.texts(of: "#a") == ["*** bob joined #a"])
    }
}
