import Foundation
import Logging
import NIOCore
import NIOPosix
import ParleyCore
import ParleyProtocols
import ServiceLifecycle

/// The operator's console on the server's own terminal, as a `Service`: lines without a slash are announced to
/// everyone; `/say`, `/kick`, `/who`, `/rooms`, and every room operator's command on any room; `exit` or `/shutdown` returns from `run()`, which the service
/// group is configured to treat as "shut down gracefully".
public struct AdminConsole: Service {
    let hub: ChatHub<Fanout>
    let input: CInt
    let output: FileHandle
    let logger: Logger

    public init(hub: ChatHub<Fanout>, input: CInt = STDIN_FILENO, output: FileHandle = .standardOutput, logger: Logger) {
        self.hub = hub
        self.input = input
        self.output = output
        self.logger = logger
    }

    public func run() async throws {
        let descriptor = dup(input)
        let channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .takingOwnershipOfDescriptor(input: descriptor) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FrameHandler(limits: .init(), stripsTelnet: false, greetingWindow: nil)
                    )
                    return try NIOAsyncChannel<InboundFrame, Never>(wrappingChannelSynchronously: channel)
                }
            }
        // NIO made the shared file description non-blocking; give the terminal back as it was.
        defer { _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) & ~O_NONBLOCK) }
        write(["*** Parley console: type a line to announce it to everyone, /help for commands, exit to stop."])
        let stopRequested = try await channel.executeThenClose { inbound in
            for try await frame in inbound.cancelOnGracefulShutdown() {
                guard case .line(let line) = frame else { continue }
                let (lines, stop) = execute(String(decoding: line.readableBytesView, as: UTF8.self))
                write(lines)
                if stop { return true }
            }
            return false
        }
        if stopRequested {
            logger.notice("shutdown requested at the console")
            return
        }
        // End of input: the console is gone, the server is not; wait for the real shutdown.
        try? await gracefulShutdown()
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
            case .help:
                return (ConsoleCommands.table.map { "***   \($0.usage)  \($0.summary)" } + ["***   any other line: a notice to everyone"], false)
            case .shutdown:
                return (["*** shutting down"], true)
            }
        } catch {
            return (["!!! \(error.message)"], false)
        }
    }

    private func write(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        output.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
