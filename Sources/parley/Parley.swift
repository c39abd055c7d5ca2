import ArgumentParser

@main
struct Parley: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley",
        abstract: "A fast, self-hosted chat server and terminal client.",
        discussion: """
            Start a server with `parley serve`; people join with `nc HOST 5000`, `telnet HOST 5000`, or any \
            program that speaks Parley's JSON-lines protocol (docs/PROTOCOL.md).
            """,
        version: "0.1.0",
        subcommands: [Serve.self, Connect.self, AccountCommand.self, BackupCommand.self, RestoreCommand.self, BenchCommand.self]
    )
}
