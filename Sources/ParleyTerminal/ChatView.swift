import Foundation
import ParleyCore

/// The terminal client's picture of the chat: the rooms it is in, each with its scrollback, members and unread
/// count, the current room, and what the status line shows. Server events go in; styled lines come out.
public struct ChatView: Sendable {
    public enum ConnectionState: Sendable, Equatable {
        case connecting
        case connected
        case disconnected(retryingIn: Duration?)
    }

    /// A window: a room (`#name`), or a private conversation (named by the other's nick).
    public struct Room: Sendable {
        public fileprivate(set) var name: String
        public fileprivate(set) var lines: [StyledLine] = []
        public fileprivate(set) var members: [String] = []
        public fileprivate(set) var unread = 0
        public fileprivate(set) var mentioned = false
        /// The local day of the last message shown (`ChatView.day`): a message of another day is preceded by a
        /// line naming its day.
        fileprivate var lastDay: Int?
        /// How many of its lines are below the screen (scrolled back); 0 follows the newest.
        public fileprivate(set) var scrolledUp = 0
        /// The oldest message id shown, where paging back into the server's history continues.
        fileprivate var oldestID: Int64?
        /// The ref of the request for older history on its way, if one is.
        fileprivate var olderRef: String?
        /// The server had nothing older: no more requests for it.
        fileprivate var reachedStart = false
    }

    /// The buffer for what belongs to no room (before joining any, or after leaving all).
    public static let statusName = "(status)"

    public private(set) var rooms: [Room] = [Room(name: ChatView.statusName)]
    public private(set) var current = 0
    public var nick: String
    public var server: String
    public var connection = ConnectionState.connecting
    public let scrollback: Int
    /// The newest message id seen per room (lowercased name): sent as `resume` after a reconnect, so the
    /// server replays exactly what was missed.
    public private(set) var lastSeen: [String: Int64] = [:]

    /// After failing over to another server, whose message ids are its own: everything it replays is new here.
    public mutating func forgetSeen() {
        lastSeen = [:]
    }
    /// The clock that says what "today" is (messages of other days show their date).
    public var now: @Sendable () -> Date = { Date() }
    /// How a message's time is shown (strftime; the config's `timestamp`); nil: `HH:MM`.
    public var timestampFormat: String?
    /// Nicks whose messages are not shown (lowercased; `/ignore`).
    public var ignored: Set<String> = []
    /// The text of a notification for the last message that rang the bell (a mention or a private message);
    /// the client takes it (`takeNotification`).
    public private(set) var notification: String?

    /// The escape sequences that raise `text` as a desktop notification: OSC 9 (iTerm2, Windows Terminal, kitty)
    /// and OSC 777 (foot, urxvt, VTE with it); terminals without them ignore both. Every control character (which
    /// could end the sequence early and start another) and `;` (OSC 777's separator) is left out.
    public static func desktopNotification(_ text: String) -> String {
        let safe = String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.properties.generalCategory != .control && $0 != ";" }))
        return "\u{1B}]9;\(safe)\u{7}\u{1B}]777;notify;Parley;\(safe)\u{7}"
    }

    public mutating func takeNotification() -> String? {
        defer { notification = nil }
        return notification
    }

    /// Rooms whose replay after a reconnect has not come yet: it is what was missed, and says so.
    private var missedIn: Set<String> = []

    public init(nick: String, server: String, scrollback: Int = 2000) {
        self.nick = nick
        self.server = server
        self.scrollback = scrollback
    }

    public var currentRoom: Room { rooms[current] }
    /// The current window's name (a room or a nick), or nil in the status buffer.
    public var currentWindowName: String? { current == 0 ? nil : rooms[current].name }
    /// The current room's name; nil in the status buffer or a private conversation.
    public var currentRoomName: String? { currentWindowName.flatMap { $0.hasPrefix("#") ? $0 : nil } }
    /// The nick of the current private conversation, if the current window is one.
    public var currentConversation: String? { currentWindowName.flatMap { $0.hasPrefix("#") ? nil : $0 } }
    /// The rooms joined, in order (without the status buffer and the conversations).
    public var joinedRooms: [String] { rooms.dropFirst().map(\.name).filter { $0.hasPrefix("#") } }

    // MARK: - Events

    /// Applies a server event; returns true when it mentions the user (the client rings the bell).
    @discardableResult
    public mutating func apply(_ event: ChatEvent) -> Bool {
        switch event {
        case .welcome(let nick, let server, _, _, _):
            self.nick = clean(nick)
            self.server = clean(server)
            connection = .connected
            system("Connected to \(self.server) as \(self.nick).")
        case .motd(let lines):
            for line in lines { system(line) }
        case .message(let message), .announcement(let message, _):
            return add(message)
        case .ack:
            break  // the client records its own message with `sent(_:)`, which knows the text
        case .joined(let room, let who, _, _):
            // Joining a room makes it current; joining again one the view still has (the rejoins after a
            // reconnect) leaves the current room as it was, where the user was reading.
            let known = roomIndex(room)
            let index = known ?? addRoom(room)
            if who.lowercased() == nick.lowercased() && known == nil { select(index) }
            if !rooms[index].members.contains(where: { $0.lowercased() == who.lowercased() }) { rooms[index].members.append(who) }
            append(StyledLine([Span("*** \(clean(who)) joined \(clean(room))", .dim)]), to: index, counts: false)
        case .left(let room, let who, let reason):
            guard let index = roomIndex(room) else { break }
            if who.lowercased() == nick.lowercased() {
                rooms.remove(at: index)
                var next = current >= index ? max(0, min(current - 1, rooms.count - 1)) : current
                if next == 0 && rooms.count > 1 { next = rooms.count - 1 }
                select(next)
                system("You left \(clean(room)).")
            } else {
                rooms[index].members.removeAll { $0.lowercased() == who.lowercased() }
                let why: String = if case .parted(nil) = reason { "" } else { " (\(clean(reason.text)))" }
                append(StyledLine([Span("*** \(clean(who)) left \(clean(room))\(why)", .dim)]), to: index, counts: false)
            }
        case .nickChanged(let old, let new):
            if old.lowercased() == nick.lowercased() { nick = clean(new) }
            // A conversation follows the other's new nick.
            if let index = roomIndex(old), !old.hasPrefix("#") {
                rooms[index].name = clean(new)
                append(StyledLine([Span("*** \(clean(old)) is now known as \(clean(new))", .dim)]), to: index, counts: false)
            }
            for index in rooms.indices where rooms[index].members.contains(where: { $0.lowercased() == old.lowercased() }) {
                rooms[index].members = rooms[index].members.map { $0.lowercased() == old.lowercased() ? new : $0 }
                append(StyledLine([Span("*** \(clean(old)) is now known as \(clean(new))", .dim)]), to: index, counts: false)
            }
        case .members(let room, let nicks, let operators, let voiced, _, _):
            if let room, let index = roomIndex(room) {
                rooms[index].members = nicks
                let names = ChatEvent.marked(nicks.map(clean), operators: operators.map(clean), voiced: voiced.map(clean))
                append(StyledLine([Span("*** In \(clean(room)) (\(nicks.count)): \(names.joined(separator: ", "))", .dim)]), to: index, counts: false)
            } else {
                system("Online (\(nicks.count)): \(nicks.map(clean).joined(separator: ", "))")
            }
        case .rooms(let list):
            system("Rooms (\(list.count)):")
            for room in list {
                system("  \(clean(room.name)) (\(room.members))" + (room.topic.isEmpty ? "" : ": \(clean(room.topic))"))
            }
        case .topicChanged(let room, let text, let by, _, _):
            return apply(.topic(room: room, text: text, setBy: by.description))
        case .topic(let room, let text, let setBy, _):
            let index = roomIndex(room) ?? current
            let line = text.isEmpty ? "*** \(clean(room)) has no topic" : "*** Topic of \(clean(room)): \(clean(text))" + (setBy.map { " (set by \(clean($0)))" } ?? "")
            append(StyledLine([Span(line, .dim)]), to: index, counts: false)
        case .error(let error, let ref):
            // A request for older history that failed may be made again.
            if let ref, let index = rooms.firstIndex(where: { $0.olderRef == ref }) { rooms[index].olderRef = nil }
            append(StyledLine([Span("!!! \(clean(error.message))", .error)]), to: current, counts: false)
        case .notice(let text):
            system(clean(text))
        case .help(let commands):
            for command in commands { system("  \(clean(command.usage))  \(clean(command.summary))") }
        case .currentRoom:
            break  // the view keeps its own current room
        case .shutdown(let reason):
            system("The server is shutting down" + (reason.map { " (\(clean($0)))" } ?? "") + ".")
        case .pong:
            break
        case .historyTargets:
            break  // asked for on IRC only
        case .history(let room, let messages, let ref):
            // A private conversation's history (`/history NICK`) shows where it was asked for.
            guard let index = roomIndex(room) ?? (room.hasPrefix("#") ? nil : current) else { break }
            let messages = messages.filter { !isIgnored($0) }
            if let ref, ref == rooms[index].olderRef {
                prependOlder(messages, to: index)
                break
            }
            // The first replay after a reconnect is what was missed, even when it is nothing.
            let missed = ref == nil && missedIn.remove(room.lowercased()) != nil
            // A replay (joining, resuming) shows what is new; what was asked for (`/history`) is shown whole.
            let shown = ref != nil ? messages : messages.filter { $0.id > (lastSeen[room.lowercased()] ?? 0) }
            guard !shown.isEmpty else {
                if ref != nil { system("No history in \(clean(room)).") }
                break
            }
            let count = shown.count == 1 ? "1 message" : "\(shown.count) messages"
            let header = missed ? "*** Missed in \(clean(room)) while disconnected: \(count)" : "*** History of \(clean(room)):"
            append(StyledLine([Span(header, .dim)]), to: index, counts: false)
            for message in shown {
                // What was missed is news: a window not being read shows it as unread, as a live line would count
                // (not the user's own lines, nor users' notices), and a mention marks it.
                let own = message.from?.lowercased() == nick.lowercased()
                append(historyLine(message), of: message.time, to: index, counts: missed && !own && (message.kind != .notice || message.from == nil))
                if missed && !own && mentions(message.text) && index != current { rooms[index].mentioned = true }
                noteOldest(message, in: index)
            }
            append(StyledLine([Span("*** End of history.", .dim)]), to: index, counts: false)
            see(shown.last!)
        case .moderation(let notice):
            let index = roomIndex(notice.room) ?? current
            append(StyledLine([Span("*** " + clean(notice.sentence(time: Self.dateAndClock)), .dim)]), to: index, counts: false)
        case .restrictions(let room, let list, _):
            let index = roomIndex(room) ?? current
            let lines = list.isEmpty ? ["Nobody is banned or muted in \(room)."] : ["Bans and mutes in \(room) (\(list.count)):"] + list.map { "  " + $0.summary(time: Self.dateAndClock) }
            for line in lines { append(StyledLine([Span("*** " + clean(line), .dim)]), to: index, counts: false) }
        case .awayChanged(let who, let message):
            system(message.map { "\(clean(who)) is away: \(clean($0))" } ?? "\(clean(who)) is back.")
        case .isAway(let who, let message):
            system("\(clean(who)) is away: \(clean(message))")
        case .whois(let query, nil):
            system("Nobody called \(clean(query)) is online.")
        case .whois(_, let profile?):
            for line in profile.summary { system(clean(line)) }
        case .whowas(let query, let profiles):
            system(profiles.isEmpty ? "Nobody went by \(clean(query)) lately." : "Lately: \(profiles.map { clean($0.nick) }.joined(separator: ", "))")
        case .whoList(let query, let profiles, _):
            system("Who \(clean(query)) (\(profiles.count)): \(profiles.map { clean($0.nick) }.joined(separator: ", "))")
        case .invited(let room, _, let by, _):
            system("\(clean(by)) invites you to \(clean(room)): /join \(clean(room))")
        case .inviting(let room, let nick):
            system("You invited \(clean(nick)) to \(clean(room)).")
        case .modes(let room, let modes, let key, let limit, _):
            let described = modes.meanings + (key.map { ["key \(clean($0))"] } ?? []) + (limit.map { ["at most \($0) members"] } ?? [])
            system("\(clean(room)): " + described.joined(separator: ", "))
        case .invisible:
            break
        }
        return false
    }

    private mutating func see(_ message: ChatMessage) {
        guard case .room(let room) = message.target else { return }
        lastSeen[room.lowercased()] = max(lastSeen[room.lowercased()] ?? 0, message.id)
    }

    /// Records the user's own message once the server has acknowledged it: a private one in its conversation's
    /// window (opened, not made current, when there was none).
    public mutating func sent(_ message: ChatMessage) {
        see(message)
        switch message.target {
        case .room(let room):
            let index = roomIndex(room) ?? current
            append(line(for: message, own: true), of: message.time, to: index, counts: false)
            noteOldest(message, in: index)
        case .user(let nick):
            let index = conversation(with: nick)
            append(line(for: message, own: true), of: message.time, to: index, counts: false)
            noteOldest(message, in: index)
        case .everyone:
            append(line(for: message, own: true), of: message.time, to: current, counts: false)
        }
    }

    /// The window of the private conversation with `nick`, opened when there is none (and said in the current
    /// window, so the user knows where it is).
    @discardableResult
    public mutating func conversation(with nick: String) -> Int {
        if let index = roomIndex(nick) { return index }
        let index = addRoom(nick)
        system("Private conversation with \(clean(nick)): window \(index)" + (index <= 9 ? " (Alt+\(index))." : "."))
        return index
    }

    /// Opens the conversation with `nick` and makes it current (`/query`).
    public mutating func openConversation(with nick: String) {
        select(conversation(with: nick))
    }

    /// Closes the current window when it is a private conversation; false otherwise.
    public mutating func closeConversation() -> Bool {
        guard currentConversation != nil else { return false }
        rooms.remove(at: current)
        select(min(current, rooms.count - 1))
        return true
    }

    private func isIgnored(_ message: ChatMessage) -> Bool {
        message.from.map { ignored.contains($0.lowercased()) } ?? false
    }

    /// The connection is gone: requests for older history on their way will not be answered.
    public mutating func connectionLost() {
        for index in rooms.indices { rooms[index].olderRef = nil }
    }

    private func historyLine(_ message: ChatMessage) -> StyledLine {
        var line = line(for: message, own: message.from?.lowercased() == nick.lowercased())
        line.spans.insert(Span("(history) ", .dim), at: 1)
        line.indent += DisplayWidth.of("(history) ")
        return line
    }

    private mutating func noteOldest(_ message: ChatMessage, in index: Int) {
        rooms[index].oldestID = min(rooms[index].oldestID ?? message.id, message.id)
    }

    /// Older messages the user scrolled back to, put above everything the window holds.
    private mutating func prependOlder(_ messages: [ChatMessage], to index: Int) {
        rooms[index].olderRef = nil
        let older = messages.filter { $0.id < (rooms[index].oldestID ?? .max) }
        guard !older.isEmpty else {
            rooms[index].reachedStart = true
            rooms[index].lines.insert(StyledLine([Span("*** Nothing older.", .dim)]), at: 0)
            return
        }
        var lines: [StyledLine] = []
        var day: Int?
        for message in older {
            // A line naming the day where it changes, as below.
            let messageDay = Self.day(message.time)
            if let day, day != messageDay { lines.append(StyledLine([Span("--- \(Self.dayName(message.time)) ---", .dim)])) }
            day = messageDay
            lines.append(historyLine(message))
            noteOldest(message, in: index)
        }
        // Past the scrollback limit by one page at most: no more is asked for then (`olderHistoryRequest`).
        rooms[index].lines.insert(contentsOf: lines, at: 0)
    }

    // MARK: - Scrolling

    /// Scrolls the current window back (positive) or forward by `lines`, within what it holds.
    public mutating func scroll(by lines: Int) {
        rooms[current].scrolledUp = max(0, min(rooms[current].lines.count - 1, rooms[current].scrolledUp + lines))
    }

    public mutating func scrollToTop() { rooms[current].scrolledUp = max(0, rooms[current].lines.count - 1) }

    public mutating func scrollToBottom() { rooms[current].scrolledUp = 0 }

    /// The request for the messages before the oldest the current window shows, when it has scrolled to its top
    /// and may ask (a room or conversation, nothing on its way, the server not yet out of history); the caller
    /// sends it and tells `awaitingOlder(ref:)`.
    public func olderHistoryRequest() -> Request? {
        let room = rooms[current]
        guard current > 0, room.olderRef == nil, !room.reachedStart, room.lines.count < scrollback, let oldest = room.oldestID else { return nil }
        return .history(room: room.name, .before(oldest, count: 50))
    }

    public mutating func awaitingOlder(ref: String) {
        rooms[current].olderRef = ref
    }

    /// `/find TEXT`: the current window's lines that contain `text` (without regard to case), the latest 50 at
    /// most, shown again below with the matches highlighted (as irssi's /lastlog); returns how many matched.
    @discardableResult
    public mutating func find(_ text: String) -> Int {
        let needle = text
        guard !needle.isEmpty else { return 0 }
        let found = rooms[current].lines.filter { !$0.isFindResult && $0.plainText.range(of: needle, options: .caseInsensitive) != nil }
        let shown = found.suffix(50)
        let header = found.isEmpty ? "Nothing in this window contains \"\(clean(text))\"." :
            "\(found.count) line\(found.count == 1 ? "" : "s") contain \"\(clean(text))\"" + (found.count > shown.count ? " (the latest \(shown.count)):" : ":")
        var headerLine = StyledLine([Span("*** \(header)", .dim)])
        headerLine.isFindResult = true
        append(headerLine, to: current, counts: false)
        for line in shown {
            var marked = StyledLine(line.spans.flatMap { Self.highlight(needle, in: $0) }, indent: line.indent)
            marked.isFindResult = true
            append(marked, to: current, counts: false)
        }
        return found.count
    }

    /// `span` cut where `needle` occurs (without regard to case), the occurrences as mentions.
    static func highlight(_ needle: String, in span: Span) -> [Span] {
        var spans: [Span] = []
        var rest = Substring(span.text)
        while let range = rest.range(of: needle, options: .caseInsensitive), !range.isEmpty {
            if range.lowerBound > rest.startIndex { spans.append(Span(String(rest[..<range.lowerBound]), span.style)) }
            spans.append(Span(String(rest[range]), .mention))
            rest = rest[range.upperBound...]
        }
        if !rest.isEmpty { spans.append(Span(String(rest), span.style)) }
        return spans
    }

    /// After a reconnect: the replays of these rooms that come next are what was missed meanwhile.
    public mutating func expectMissed(in rooms: [String]) {
        missedIn = Set(rooms.map { $0.lowercased() })
    }

    /// A line from the client itself, in the current room, dimmed.
    public mutating func system(_ text: String) {
        append(StyledLine([Span("*** \(text)", .dim)]), to: current, counts: false)
    }

    public mutating func clearCurrent() {
        rooms[current].lines.removeAll()
    }

    // MARK: - Switching

    /// Makes the named room current; false when the client is not in it.
    @discardableResult
    public mutating func switchTo(_ room: String) -> Bool {
        guard let index = roomIndex(room) else { return false }
        select(index)
        return true
    }

    /// Alt+N: the Nth joined room.
    public mutating func switchTo(number: Int) {
        if (1..<rooms.count).contains(number) { select(number) }
    }

    public mutating func next() { if rooms.count > 1 { select(current % (rooms.count - 1) + 1) } }

    public mutating func previous() {
        if rooms.count > 1 { select(current <= 1 ? rooms.count - 1 : current - 1) }
    }

    private mutating func select(_ index: Int) {
        current = index
        rooms[index].unread = 0
        rooms[index].mentioned = false
    }

    // MARK: - Completion

    /// Candidates for Tab: commands for "/…", rooms for "#…", otherwise the nicks of the current room.
    public func completions(for word: String, commands: [String]) -> [String] {
        if word.hasPrefix("/") { return commands }
        if word.hasPrefix("#") { return joinedRooms }
        return currentRoom.members.filter { $0.lowercased() != nick.lowercased() }
    }

    // MARK: - Lines

    private mutating func add(_ message: ChatMessage) -> Bool {
        see(message)
        if isIgnored(message) { return false }
        let mention = message.from.map { $0.lowercased() != nick.lowercased() } == true && mentions(message.text)
        let index: Int
        switch message.target {
        case .room(let room): index = roomIndex(room) ?? current
        // A private message goes to its conversation's window (a server notice, which has no sender, stays).
        case .user: index = message.from.map { conversation(with: $0) } ?? current
        case .everyone: index = current
        }
        var line = line(for: message, own: false)
        if mention { line.spans = line.spans.map { Span($0.text, $0.style == .dim ? .dim : .mention) } }
        append(line, of: message.time, to: index, counts: message.kind != .notice || message.from == nil)
        if message.from != nil { noteOldest(message, in: index) }
        // Someone writing to you privately is as a mention: the status line marks the window.
        if (mention || (message.target.isPrivate && message.from != nil)) && index != current { rooms[index].mentioned = true }
        if mention || (message.target.isPrivate && message.from != nil) {
            // What a desktop notification says (the client sends it with the bell).
            let from = message.from.map(clean) ?? ""
            notification = (message.target.isPrivate ? "\(from) (private): " : "\(from) in \(rooms[index].name): ") + String(clean(message.text).prefix(200))
        }
        return mention || (message.target.isPrivate && message.from != nil)
    }

    /// A message's line; when it wraps, its text lines up under itself (after the time and the nick).
    func line(for message: ChatMessage, own: Bool) -> StyledLine {
        var line = spans(for: message, own: own)
        if line.spans.count > 1 { line.indent = DisplayWidth.of(line.spans.dropLast().map(\.text).joined()) }
        return line
    }

    private func spans(for message: ChatMessage, own: Bool) -> StyledLine {
        // The time alone today; the date too for another day (history).
        let today = Self.day(message.time) == Self.day(now())
        let time = timestampFormat.map { Self.format(message.time, $0) } ?? Self.clock(message.time)
        let stamp = Span((today ? time : Self.dateAndClock(message.time)) + " ", .dim)
        let from = clean(message.from ?? "")
        let nickStyle: Style = own ? .own : .nick(Self.colour(of: from))
        let text = clean(message.text)
        switch (message.target, message.kind) {
        case (.user(let to), _) where own:
            return StyledLine([stamp, Span("<- (private to \(clean(to))) ", .privateMessage), Span(message.kind == .action ? "* \(from) \(text)" : text)])
        case (.user, .action):
            return StyledLine([stamp, Span("-> (private) ", .privateMessage), Span("* \(from) ", nickStyle), Span(text)])
        case (.user, _):
            return StyledLine([stamp, Span("-> (private) ", .privateMessage), Span("<\(from)> ", nickStyle), Span(text)])
        case (_, .action):
            return StyledLine([stamp, Span("* \(from) ", nickStyle), Span(text)])
        case (_, .topic):
            return StyledLine([stamp, Span("-- \(message.from.map(clean) ?? "the server operator") set the topic: \(text)", .dim)])
        case (_, .notice) where message.from == nil:
            return StyledLine([stamp, Span("-server- \(text)", .dim)])
        default:
            return StyledLine([stamp, Span("<\(from)> ", nickStyle), Span(text)])
        }
    }

    private func mentions(_ text: String) -> Bool {
        let lower = text.lowercased()
        let target = nick.lowercased()
        var searchStart = lower.startIndex
        while let range = lower.range(of: target, range: searchStart..<lower.endIndex) {
            let before = range.lowerBound == lower.startIndex ? nil : lower[lower.index(before: range.lowerBound)]
            let after = range.upperBound == lower.endIndex ? nil : lower[range.upperBound]
            if !(before?.isLetter ?? false || before?.isNumber ?? false) && !(after?.isLetter ?? false || after?.isNumber ?? false) {
                return true
            }
            searchStart = range.upperBound
        }
        return false
    }

    /// A message's line, after a line naming its day when the one before it in the window was of another day.
    private mutating func append(_ line: StyledLine, of time: Date, to index: Int, counts: Bool) {
        let day = Self.day(time)
        if let last = rooms[index].lastDay, last != day {
            append(StyledLine([Span("--- \(Self.dayName(time)) ---", .dim)]), to: index, counts: false)
        }
        rooms[index].lastDay = day
        append(line, to: index, counts: counts)
    }

    private mutating func append(_ line: StyledLine, to index: Int, counts: Bool) {
        rooms[index].lines.append(line)
        // Scrolled back, the screen stays where it is while lines come in below.
        if rooms[index].scrolledUp > 0 { rooms[index].scrolledUp += 1 }
        if rooms[index].lines.count > scrollback {
            rooms[index].lines.removeFirst(rooms[index].lines.count - scrollback)
            rooms[index].scrolledUp = min(rooms[index].scrolledUp, rooms[index].lines.count - 1)
        }
        if counts && index != current { rooms[index].unread += 1 }
    }

    private func roomIndex(_ name: String) -> Int? {
        rooms.indices.dropFirst().first { rooms[$0].name.lowercased() == name.lowercased() }
    }

    private mutating func addRoom(_ name: String) -> Int {
        rooms.append(Room(name: clean(name)))
        return rooms.count - 1
    }

    /// Whatever the server relays is shown as text, never interpreted by the terminal.
    private func clean(_ text: String) -> String { Sanitizer.text(text) }

    /// A stable colour per nick (FNV-1a of the lowercased nick: the same in every run, unlike `Hasher`).
    public static func colour(of nick: String) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in nick.lowercased().utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return Int(hash % UInt32(Style.nickColours))
    }

    /// `MM-DD HH:MM`, for when a ban or mute ends (maybe days away).
    static func dateAndClock(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d-%02d %02d:%02d", parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min)
    }

    /// The local day, as a number that changes with it (year, month and day).
    static func day(_ date: Date) -> Int {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return Int(parts.tm_year) * 10_000 + Int(parts.tm_mon) * 100 + Int(parts.tm_mday)
    }

    /// "Sunday 6 December 2026", in the local time zone (the separator between days).
    static func dayName(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEEE d MMMM yyyy"
        return formatter.string(from: date)
    }

    /// `date` in the local time zone by a strftime format (at most 64 bytes come out).
    static func format(_ date: Date, _ format: String) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [Int8](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, format, &parts)
        // Too long for the buffer, strftime writes nothing: the plain clock then. No control character (%n, %t)
        // reaches the screen.
        guard length > 0 else { return clock(date) }
        return Sanitizer.text(String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    static func clock(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d:%02d", parts.tm_hour, parts.tm_min)
    }
}

extension ChatMessage.Target {
    var isPrivate: Bool { if case .user = self { true } else { false } }
}

