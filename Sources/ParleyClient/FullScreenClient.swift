import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import ParleyTerminal
import Synchronization
import UnixSignals

/// `parley connect` on a terminal: the full-screen client.
///
/// Four producers post to one mailbox: the keyboard, the connector (server events and connection state),
/// signals (resize, terminate) and nothing else. One loop takes each batch, updates the view and the input
/// line, and redraws once; incoming traffic therefore never garbles what the user is typing.
public enum FullScreenClient {
    enum Input: Sendable {
        case keys([UInt8])
        case inputEnded
        case connection(Connector.Report)
        case resize
        case terminate
    }

    public static func run(_ options: ClientOptions) async -> Int32 {
        // Connect before taking over the screen, so an unreachable server is a plain error message.
        guard let (first, trust, index) = await ServerLink.connectOrReport(options) else { return 1 }
        let terminal = Terminal()
        do {
            try terminal.takeOver()
        } catch {
            LineModeClient.printError("\(error)")
            return 1
        }
        let outcome = await runLoop(options, terminal: terminal, first: first, trust: trust, index: index)
        terminal.restore()
        if let message = outcome.message { LineModeClient.printError(message) }
        return outcome.status
    }

    private static func runLoop(
        _ options: ClientOptions, terminal: Terminal, first: ServerLink.Channel, trust: ServerTrust?, index: Int
    ) async -> (status: Int32, message: String?) {
        let mailbox = Mailbox<Input>()
        let connector = Connector(
            addresses: options.addresses, connected: index, trust: trust, tls: options.tls, nick: options.nick, password: options.password,
            serverPassword: options.serverPassword
        )
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await chunk in StandardInput.chunks() { mailbox.post(.keys(chunk)) }
                mailbox.post(.inputEnded)
            }
            group.addTask {
                await connector.run(first: first) { mailbox.post(.connection($0)) }
            }
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigwinch, .sigterm, .sighup, .sigint) {
                    mailbox.post(signal == .sigwinch ? .resize : .terminate)
                }
            }
            var app = App(options: options, terminal: terminal, connector: connector)
            let outcome = await app.run(mailbox)
            group.cancelAll()
            first.channel.close(promise: nil)
            return outcome
        }
    }

    /// The client's state and what it does with each input.
    struct App {
        enum Registration {
            case waiting
            /// The server refused the nick; the input line asks for another.
            case choosingNick
            /// The nick is registered (or its password was wrong); the input line asks for the password, unshown.
            case askingPassword
            case registered
        }

        let options: ClientOptions
        let terminal: Terminal
        let connector: Connector
        let codec = JSONCodec()
        var view: ChatView
        var editor = LineEditor()
        var keys = KeyDecoder()
        var screen: Screen
        var registration = Registration.waiting
        var everRegistered = false
        /// Hellos refused since the last welcome because the nick was still held: by this client's own connection
        /// that just closed, which the server has not yet seen go.
        var heldNickRetries = 0
        /// Rooms to join again after a reconnect.
        var rooms: [String] = []
        var sent: [String: Request] = [:]
        var nextRef = 1
        var bell = false
        var outcome: (status: Int32, message: String?)?

        init(options: ClientOptions, terminal: Terminal, connector: Connector) {
            self.options = options
            self.terminal = terminal
            self.connector = connector
            self.view = ChatView(nick: options.nick, server: options.address.description)
            view.timestampFormat = options.timestamp
            view.ignored = Set(options.ignore.map { $0.lowercased() })
            let size = terminal.size
            self.screen = Screen(width: size.width, height: size.height, colour: options.colour)
        }

        mutating func run(_ mailbox: Mailbox<Input>) async -> (status: Int32, message: String?) {
            draw()
            while outcome == nil {
                for input in await mailbox.next() {
                    await handle(input)
                    if outcome != nil { break }
                }
                draw()
            }
            return outcome!
        }

        mutating func handle(_ input: Input) async {
            switch input {
            case .keys(let bytes):
                for key in keys.decode(bytes) {
                    await handle(key)
                    if outcome != nil { return }
                }
            case .inputEnded, .terminate:
                await quit()
            case .resize:
                let size = terminal.size
                screen.width = max(10, size.width)
                screen.height = max(3, size.height)
                terminal.write("\u{1B}[2J")
            case .connection(.connecting):
                view.connection = .connecting
            case .connection(.connected):
                view.connection = .connected
            case .connection(.disconnected(let delay)):
                if registration == .registered {
                    view.system("Disconnected from the server; reconnecting (the status line counts down).")
                    rooms = view.joinedRooms
                    let seen = view.lastSeen
                    connector.resume.withLock { $0 = seen }
                    // Back in the rooms the user was in, and only those: #general too only if they still were.
                    let general = rooms.contains { $0.lowercased() == RoomName.general.key }
                    connector.joinsGeneral.withLock { $0 = general }
                }
                if registration == .askingPassword {
                    // Half a password is not left in the input line, where it would show.
                    editor.set("")
                }
                registration = .waiting
                view.connectionLost()
                view.connection = .disconnected(retryingIn: delay)
            case .connection(.failedOver(let to, let from)):
                // Another server numbers its messages its own way: what was seen on the last one means nothing there.
                view.forgetSeen()
                view.system("Connected to \(to) instead of \(from), which did not answer.")
            case .connection(.event(let event)):
                await handle(event)
            }
        }

        mutating func handle(_ key: Key) async {
            switch key {
            case .control("c"):
                await quit()
                return
            case .control("d") where editor.text.isEmpty:
                await quit()
                return
            case .altDigit(let number):
                view.switchTo(number: number)
                return
            case .control("n"):
                view.next()
                return
            case .control("p"):
                view.previous()
                return
            case .control("l"):
                terminal.write("\u{1B}[2J")
                return
            case .pageUp, .pageDown, .scrollTop, .scrollBottom, .wheelUp, .wheelDown:
                await scroll(key)
                return
            case .up where registration == .askingPassword, .down where registration == .askingPassword:
                return  // the input history has no place in a password
            case .paste(let text) where registration == .askingPassword || registration == .choosingNick:
                // A password manager pastes the password, often with a line break: its first line is the answer.
                let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
                editor.set("")
                await submit(line)
                return
            default:
                break
            }
            // A password typed at the prompt is never kept in the input history.
            editor.isSecret = registration == .askingPassword
            let view = self.view
            switch editor.apply(key, candidates: { view.completions(for: $0, commands: ClientCommands.names) }) {
            case .none:
                break
            case .submit(let line):
                await submit(line)
            case .submitPaste(let lines):
                // Pasted lines are text for the current window, never commands.
                if let nick = view.currentConversation {
                    self.view.scrollToBottom()
                    for line in lines { await send(.whisper(to: nick, text: line, kind: .normal)) }
                    return
                }
                guard let room = view.currentRoomName else {
                    self.view.system("You are not in a room. Type /join #room to enter one.")
                    return
                }
                self.view.scrollToBottom()
                for line in lines { await send(.say(room: room, text: line, kind: .normal)) }
            }
        }

        /// Scrollback: a page (what the screen shows, less one line for context), three lines for the wheel, or all
        /// the way; scrolled to the top of what it holds, the window asks the server for older history.
        mutating func scroll(_ key: Key) async {
            let page = max(1, screen.frame(view, editor: editor).linesShown - 1)
            switch key {
            case .pageUp: view.scroll(by: page)
            case .pageDown: view.scroll(by: -page)
            case .wheelUp: view.scroll(by: 3)
            case .wheelDown: view.scroll(by: -3)
            case .scrollTop: view.scrollToTop()
            default: view.scrollToBottom()
            }
            guard registration == .registered, key != .pageDown, key != .wheelDown, key != .scrollBottom, screen.frame(view, editor: editor).atTop,
                let request = view.olderHistoryRequest(), let ref = await send(request)
            else { return }
            view.awaitingOlder(ref: ref)
        }

        mutating func submit(_ line: String) async {
            if registration == .choosingNick {
                let nick = line.trimmingCharacters(in: .whitespaces)
                guard !nick.isEmpty else { return }
                connector.nick.withLock { $0 = nick }
                // A password was for the nick before.
                connector.password.withLock { $0 = nil }
                registration = .waiting
                if !(await connector.send(connector.hello())) { view.system("Not connected.") }
                return
            }
            if registration == .askingPassword {
                // An empty line: not this nick after all.
                guard !line.isEmpty else {
                    registration = .choosingNick
                    view.system("Type another nickname and press Enter.")
                    return
                }
                let nick = connector.nick.withLock { $0 }
                connector.password.withLock { $0 = (nick, line) }
                registration = .waiting
                if !(await connector.send(connector.hello())) { view.system("Not connected.") }
                return
            }
            // What is typed is answered below: back to the newest lines.
            view.scrollToBottom()
            switch ClientCommands.action(forLine: line, currentRoom: view.currentRoomName, conversation: view.currentConversation) {
            case .send(.quit(let reason)):
                await send(.quit(reason: reason))
                outcome = (0, nil)
            case .send(let request):
                if await send(request) == nil { editor.set(line) }
            case .switchRoom(let room):
                if !view.switchTo(room) { view.system("You are not in \(room). Type /join \(room) first.") }
            case .query(let nick, let text):
                view.openConversation(with: nick)
                if let text { await send(.whisper(to: nick, text: text, kind: .normal)) }
            case .close:
                if !view.closeConversation() { view.system("/close closes a private conversation's window; /part leaves a room.") }
            case .find(let text):
                view.find(text)
            case .ignore(nil):
                view.system(view.ignored.isEmpty ? "Nobody is ignored." : "Ignored: " + view.ignored.sorted().joined(separator: ", "))
            case .ignore(let nick?):
                view.ignored.insert(nick.lowercased())
                saveIgnored()
                view.system("\(nick)'s messages are hidden now (/unignore \(nick) shows them again).")
            case .unignore(let nick):
                guard view.ignored.remove(nick.lowercased()) != nil else { return view.system("\(nick) is not ignored.") }
                saveIgnored()
                view.system("\(nick)'s messages are shown again.")
            case .clear:
                view.clearCurrent()
            case .reconnect:
                view.system("Reconnecting…")
                connector.reconnect()
            case .help:
                for line in ClientCommands.helpLines { view.system(line) }
            case .error(let message):
                view.system(message)
            case .nothing:
                break
            }
        }

        /// Sends a request; its ref, or nil when it was not sent (not connected).
        @discardableResult
        mutating func send(_ request: Request) async -> String? {
            let ref = "c\(nextRef)"
            nextRef += 1
            guard let frame = codec.encode(request, ref: ref) else { return ref }
            guard registration == .registered, await connector.send(frame) else {
                view.system("Not connected: that was not sent (it is back in the input line).")
                return nil
            }
            switch request {
            case .say, .whisper: sent[ref] = request
            default: break
            }
            return ref
        }

        mutating func handle(_ event: ChatEvent) async {
            switch event {
            case .welcome(let nick, _, _, _, _):
                registration = .registered
                heldNickRetries = 0
                connector.nick.withLock { $0 = nick }
                view.apply(event)
                // After a reconnect, go back to every room; on the first connect, to --room.
                let again = everRegistered ? rooms : (options.room.map { [$0] } ?? options.rooms)
                if everRegistered {
                    view.system("Reconnected.")
                    view.expectMissed(in: rooms)
                }
                everRegistered = true
                for room in again where room.lowercased() != RoomName.general.key { await send(.join(room)) }
                return
            case .error(let error, _) where registration == .waiting:
                switch error.code {
                case .nickTaken where everRegistered && heldNickRetries < (error.message.contains("another server") ? 12 : 3):
                    // Reconnecting at once (/reconnect), the server may not yet have seen the old connection go;
                    // a moment later the nick is free. After a node of a chat of several died, the others hold its
                    // users' nicks until its lease runs out (`--node-timeout`, 15 s by default; the refusal says
                    // "another server"): twelve tries of the backoff (capped at 3 s early in an outage) wait that
                    // out. Someone else holding it is asked about after them.
                    heldNickRetries += 1
                    view.system("\(connector.nick.withLock { $0 }) is still held by the connection that just closed; trying again.")
                    connector.retry()
                case .nickTaken, .invalidNick:
                    registration = .choosingNick
                    view.system("\(error.message) Type another nickname and press Enter.")
                case .nickRegistered, .loginFailed, .tooManyAttempts:
                    // Asked again on a wrong one; kept once right, for every reconnect.
                    connector.password.withLock { $0 = nil }
                    askForPassword()
                    let nick = connector.nick.withLock { $0 }
                    let said: String =
                        switch error.code {
                        case .loginFailed: "Wrong password for \(nick)."
                        case .tooManyAttempts: clean(error.message)
                        default: "\(nick) is registered."
                        }
                    view.system("\(said) Type its password and press Enter (it is not shown), or just Enter to choose another nickname.")
                case .unsupportedVersion:
                    outcome = (1, "protocol version mismatch: \(error.message)")
                case .serverPassword:
                    outcome = (1, clean(error.message))
                default:
                    // Anything else (a password refused over a plaintext port, a busy server…): said, and another
                    // nickname asked for, so the client is never left waiting on nothing.
                    connector.password.withLock { $0 = nil }
                    registration = .choosingNick
                    view.apply(event)
                    view.system("Type a nickname and press Enter to try again.")
                }
                return
            case .ack(let ref, let ack):
                guard let ref, let request = sent.removeValue(forKey: ref) else { return }
                switch request {
                case .say(let room?, let text, let kind, _):
                    view.sent(ChatMessage(id: ack.id, time: ack.time, from: view.nick, target: .room(room), kind: kind, text: text))
                case .whisper(let to, let text, let kind, _):
                    view.sent(ChatMessage(id: ack.id, time: ack.time, from: view.nick, target: .user(to), kind: kind, text: text))
                default:
                    break
                }
                return
            case .nickChanged(let old, let new) where old.lowercased() == view.nick.lowercased():
                connector.nick.withLock { $0 = new }
            default:
                break
            }
            if view.apply(event) { bell = true }
        }

        /// Keeps the ignore list in the config file (its `ignore` line; the rest of the file as it was).
        mutating func saveIgnored() {
            guard let given = options.configPath else { return }
            // Through a symlink (a dotfile manager's) to the file itself, so the link stays a link.
            let path = URL(fileURLWithPath: given).resolvingSymlinksInPath().path
            do {
                // Only a missing file starts empty: one that cannot be read is never overwritten.
                let text = FileManager.default.fileExists(atPath: path) ? try String(contentsOfFile: path, encoding: .utf8) : ""
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try ClientConfig.settingIgnore(view.ignored.sorted(), in: text).write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                view.system("The ignore list holds until you quit: \(given) could not be updated (\(error)).")
            }
        }

        /// The input line becomes the password prompt: what was typed is set aside (it would become an unseen
        /// start of the password), and nothing typed now is kept in the input history.
        mutating func askForPassword() {
            registration = .askingPassword
            editor.set("")
        }

        private func clean(_ text: String) -> String { Sanitizer.text(text) }

        mutating func quit() async {
            if registration == .registered { await send(.quit(reason: nil)) }
            outcome = (0, nil)
        }

        mutating func draw() {
            let prompt: String? =
                switch registration {
                case .choosingNick: "nick> "
                case .askingPassword: "password> "
                case .waiting, .registered: nil
                }
            // A password is not echoed, not even as stars (which would tell its length).
            let shown = registration == .askingPassword ? LineEditor() : editor
            var output = screen.render(screen.frame(view, editor: shown, prompt: prompt))
            if bell {
                // A desktop notification where the terminal shows one (OSC 9: iTerm2, Windows Terminal, kitty;
                // OSC 777: foot, urxvt, VTE with it), then the bell; terminals without them ignore the sequences.
                if let text = view.takeNotification() { output += ChatView.desktopNotification(text) }
                output += "\u{7}"
                bell = false
            }
            terminal.write(output)
        }
    }
}
