import ArgumentParser
import Foundation
import ParleyClient
import ParleyTerminal
import ParleyTLS

struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat from the terminal.",
        discussion: """
            On a terminal: a full-screen client with a window per room and per private conversation, a status \
            line and an input line (Tab completes nicks, rooms and /commands; Up/Down recall input; Alt+1…9, \
            Ctrl+N and Ctrl+P switch windows; PgUp/PgDn, Shift+PgUp/PgDn, Ctrl+Home/End and the mouse wheel \
            scroll back, into the server's history; /help lists every command). It asks the password of a \
            registered nick and reconnects by itself when the connection drops. Settings: \
            $XDG_CONFIG_HOME/parley/config.toml (server, nick, rooms, colour, timestamp, tls, ignore).

            Otherwise (stdin or stdout is not a terminal) it runs in line mode: each input line is sent, each \
            event is printed as one plain line, and at the end of input it leaves once the server has handled \
            everything, exiting 0. A taken nick or an unreachable server exits non-zero with the reason.
            """
    )

    @Argument(help: "The server, as HOST[:PORT] (default port 5000, or 5001 with --tls; default server: the config file's, or 127.0.0.1). Several nodes of one chat, or a server and its stand-in, as HOST[:PORT],HOST[:PORT]…: the first that answers is used, and after a drop the client fails over to the next.")
    var server: String?

    @Option(help: "Your nickname (default: your user name). For a registered one, the client asks its password, or set PARLEY_PASSWORD.")
    var nick: String?

    @Option(help: "A room to join and make current after connecting, e.g. #ops.")
    var room: String?

    @Option(help: "The server's password, if it asks for one (or set PARLEY_SERVER_PASSWORD, which other users cannot see in ps).")
    var serverPassword: String?

    @Flag(help: "No colours (also when NO_COLOR is set).")
    var noColor = false

    @Flag(help: "Line mode: print the raw JSON-lines protocol events instead of text.")
    var json = false

    @Flag(help: "Connect over TLS (the server's --tls-port, 5001 by default). A certificate the system does not trust is shown and, once accepted, pinned in $XDG_CONFIG_HOME/parley/known_servers, like ssh; a changed one is refused.")
    var tls = false

    @Option(help: "With --tls: trust the certificate with this SHA-256 fingerprint (as the server logs it) without asking, and pin it.")
    var acceptFingerprint: String?

    @Option(help: "The settings file (default: $XDG_CONFIG_HOME/parley/config.toml); flags win over it, and /ignore writes its ignore line (creating the file).")
    var config: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        let configPath = config ?? base + "/parley/config.toml"
        var settings = ClientConfig()
        if let text = try? String(contentsOfFile: configPath, encoding: .utf8) {
            do {
                settings = try ClientConfig.parse(text)
            } catch {
                throw ValidationError("\(configPath): \(error)")
            }
        } else if FileManager.default.fileExists(atPath: configPath) {
            throw ValidationError("\(configPath) cannot be read.")
        }
        let tls = tls || settings.tls == true
        let addresses: [ServerAddress]
        do {
            addresses = try ServerAddress.list(parsing: server ?? settings.server ?? "127.0.0.1", defaultPort: tls ? 5001 : 5000)
        } catch {
            throw ValidationError("\(error)")
        }
        if acceptFingerprint != nil && !tls { throw ValidationError("--accept-fingerprint is for --tls connections.") }
        let accepted = try acceptFingerprint.map { text in
            guard let fingerprint = Fingerprint.normalized(text) else {
                throw ValidationError("--accept-fingerprint takes a SHA-256 fingerprint: 32 bytes of hex, with or without colons.")
            }
            return fingerprint
        }
        var options = ClientOptions(
            addresses: addresses,
            nick: nick ?? settings.nick ?? environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "guest",
            room: room,
            colour: !noColor && (environment["NO_COLOR"] ?? "").isEmpty && settings.colour != false,
            json: json,
            serverPassword: serverPassword ?? environment["PARLEY_SERVER_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        )
        options.tls = tls
        options.acceptFingerprint = accepted
        options.password = environment["PARLEY_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        options.rooms = settings.rooms
        options.timestamp = settings.timestamp
        options.ignore = settings.ignore
        options.configPath = configPath
        let interactive = isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 && !json
        let status = interactive ? await FullScreenClient.run(options) : await LineModeClient.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}
