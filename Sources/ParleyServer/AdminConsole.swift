import Foundation
import Logging
import NIOCore
import NIOPosix
import ParleyCore
import ParleyProtocols
import ServiceLifecycle

/// The operator's console on the server's own terminal, as a `Service`: lines without a slash are announced to
/// everyone; `/say`, `/kick`, `/who`, `/rooms`, `/topic`, and every room operator's command on any room; `exit`
/// or `/shutdown` returns from `run()`, which the service group is configured to treat as "shut down
/// gracefully".
///
/// With a `ConsoleTerminal` (standard input and output are a terminal) the operator edits the line as in the
/// client and the log goes above it; otherwise the console reads plain lines (a pipe, or a terminal whose
/// output is redirected).
public struct AdminConsole: Service {
    let hub: ChatHub<Fanout>
    let input: CInt
    let output: FileHandle
    let terminal: ConsoleTerminal?
    let logger: Logger

    public init(
        hub: ChatHub<Fanout>, input: CInt = STDIN_FILENO, output: FileHandle = .standardOutput, terminal: ConsoleTerminal? = nil,
        logger: Logger
    ) {
        self.hub = hub
        self.input = input
        self.output = output
        self.terminal = terminal
        self.logger = logger
    }

    public func run() async throws {
        // NIO makes the terminal's file description (shared with the log's stderr) non-blocking; `parley serve`
        // gives it back as it was when the process ends, not here: until then a log line must never block on a
        // terminal nobody reads (see `ConsoleTerminal.write`).
        let stopRequested: Bool
        if let terminal {
            // Keys for the line editor as they come.
            let keys = try await open { try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: $0) }
            // Output through NIO as well, so that no writer ever blocks on a terminal that does not keep up.
            let screen = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptor(output: dup(STDOUT_FILENO)).get()
            terminal.takeOver(output: screen)
            defer {
                terminal.restore()
                screen.close(promise: nil)
            }
            stopRequested = try await serve(keys) { (bytes: ByteBuffer) in terminal.type(bytes.readableBytesView) }
        } else {
            let frames = try await open { channel in
                try channel.pipeline.syncOperations.addHandler(FrameHandler(limits: .init(), stripsTelnet: false, greetingWindow: nil))
                return try NIOAsyncChannel<InboundFrame, Never>(wrappingChannelSynchronously: channel)
            }
            stopRequested = try await serve(frames) { frame in
                guard case .line(let line) = frame else { return [] }
                return [String(decoding: line.readableBytesView, as: UTF8.self)]
            }
        }
        if stopRequested {
            logger.notice("shutdown requested at the console")
            return
        }
        // End of input: the console is gone, the server is not; wait for the real shutdown.
        try? await gracefulShutdown()
    }

    /// Standard input (a duplicate of it) as an async channel set up by `wrap`.
    private func open<Inbound: Sendable>(
        _ wrap: @escaping @Sendable (any Channel) throws -> NIOAsyncChannel<Inbound, Never>
    ) async throws -> NIOAsyncChannel<Inbound, Never> {
        try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .takingOwnershipOfDescriptor(input: dup(input)) { channel in channel.eventLoop.makeCompletedFuture { try wrap(channel) } }
    }

    /// Runs every line the operator enters until `exit` (true) or the end of input (false).
    private func serve<Inbound: Sendable>(
        _ channel: NIOAsyncChannel<Inbound, Never>, lines: @escaping (Inbound) -> [String]
    ) async throws -> Bool {
        write(["*** Parley console: type a line to announce it to everyone, /help for commands, exit to stop."])
        return try await channel.executeThenClose { inbound in
            for try await input in inbound.cancelOnGracefulShutdown() {
                for line in lines(input) {
                    terminal?.print([ConsoleTerminal.prompt + line])
                    let (replies, stop) = execute(line)
                    write(replies)
                    if stop { return true }
                }
            }
            return false
        }
    }

    /// Runs one console line; returns what to print and whether to stop the server.
    public func execute(_ line: String) -> (lines: [String], stop: Bool) {
        do throws(ChatError) {
            switch try ConsoleCommands.action(forLine: line) {
            case nil:
                return ([], false)
            case .announce(let text):
                hub.announce(text)
                return (["*** announced to \(hub.sessionCount) online"], false)
            case .say(let room, let text):
                try hub.announce(text, in: room)
                return (["*** said in \(room)"], false)
            case .kick(let nick, let reason):
                try hub.kick(nick, reason: reason, by: .server)
                return (["*** kicked \(nick)"], false)
            case .moderate(let room, let action):
                let reply = try hub.moderate(action, in: room)
                return (reply.map { TextCodec().render($0, focused: true) } ?? ["*** done"], false)
            case .who(let room):
                let nicks = try hub.nicks(in: room)
                return (["*** \(room.map { "In \($0)" } ?? "Online") (\(nicks.count)): \(nicks.joined(separator: ", "))"], false)
            case .rooms:
                return (hub.roomSummaries().map { "***   \($0.name) (\($0.members)) \($0.topic)" }, false)
            case .topic(let room, let text):
                let reply = try hub.topic(text, in: room)
                return (reply.map { TextCodec().render($0, focused: true) } ?? ["*** topic set"], false)
            case .help:
                return (ConsoleCommands.help.map { "***   \($0)" }, false)
            case .shutdown:
                return (["*** shutting down"], true)
            }
        } catch {
            return (["!!! \(error.message)"], false)
        }
    }

    /// Replies quote what users chose (topics, nicks, reasons), so they are escaped like log lines: nothing a
    /// user typed may drive the operator's terminal.
    private func write(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        let lines = lines.map(ParleyLogHandler.escaped)
        if let terminal { return terminal.print(lines) }
        output.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
