import Foundation
import NIOCore
import NIOPosix

/// A private tmux server (its own socket) holding one window of a given size: the real terminal emulator
/// the full-screen client is tested in. Keys go in with `send-keys`; the screen comes back with
/// `capture-pane`.
struct Tmux: Sendable {
    let socket = "parley-test-\(UUID().uuidString.prefix(8))"
    let session = "client"

    /// Starts `command` (a shell command line) in a new detached window of `width` × `height`.
    static func start(_ command: String, width: Int = 80, height: Int = 20) async throws -> Tmux {
        let tmux = Tmux()
        try await tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "\(width)", "-y", "\(height)", command])
        // Keep the pane after the client exits, so the screen can still be read.
        try await tmux.run(["set-option", "-t", tmux.session, "remain-on-exit", "on"])
        return tmux
    }

    /// The visible screen, one string per row.
    func screen() async throws -> [String] {
        try await run(["capture-pane", "-p", "-t", session]).components(separatedBy: "\n")
    }

    /// Types text literally (no key names).
    func type(_ text: String) async throws {
        try await run(["send-keys", "-t", session, "-l", text])
    }

    /// Presses keys by tmux name: "Enter", "C-c", "M-2", "C-n", …
    func press(_ keys: String...) async throws {
        try await run(["send-keys", "-t", session] + keys)
    }

    /// Pastes `text` the way a terminal does with bracketed paste on.
    func paste(_ text: String) async throws {
        try await run(["set-buffer", "-b", "test", text])
        try await run(["paste-buffer", "-p", "-b", "test", "-t", session])
    }

    func resize(width: Int, height: Int) async throws {
        try await run(["resize-window", "-t", session, "-x", "\(width)", "-y", "\(height)"])
    }

    /// A tmux format of the pane, e.g. `#{alternate_on}`.
    func format(_ format: String) async throws -> String {
        try await run(["display-message", "-p", "-t", session, format]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func kill() async {
        _ = try? await run(["kill-server"])
    }

    /// Polls the screen until `condition` holds, failing after `timeout`. A terminal screen cannot announce a
    /// change, so this is the one place the tests look repeatedly; every look has a deadline.
    @discardableResult
    func waitForScreen(
        timeout: TimeAmount = .seconds(15), _ what: String, _ condition: @escaping ([String]) -> Bool
    ) async throws -> [String] {
        let deadline = NIODeadline.now() + timeout
        while true {
            let rows = try await screen()
            if condition(rows) { return rows }
            guard NIODeadline.now() < deadline else {
                throw TestFailure("timed out waiting for \(what); screen:\n\(rows.joined(separator: "\n"))")
            }
            try await MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .milliseconds(25)) {}.futureResult.get()
        }
    }

    @discardableResult
    private func run(_ arguments: [String]) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let status = try await spawn(["tmux", "-L", socket] + arguments, output: file.path)
        guard status == 0 else { throw TestFailure("tmux \(arguments.joined(separator: " ")) failed (\(status)); is tmux installed?") }
        return (try? String(contentsOf: file, encoding: .utf8)) ?? ""
    }
}

/// Runs a program with stdin and stderr on /dev/null and stdout to a file, and waits for it to exit.
///
/// `Spawned`, not Foundation's `Process`: `tmux new-session` forks the tmux server, which inherits whatever
/// Process uses to watch its child, so Process never reports the exit; and the server outlives the call, so it
/// must inherit no other descriptor (another process's pipe would then never reach end of file), which
/// `Spawned` makes sure of.
private func spawn(_ arguments: [String], output: String) async throws -> Int32 {
    let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
    let errors = open("/dev/null", O_WRONLY | O_CLOEXEC)
    let written = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    defer { for descriptor in [input, errors, written] where descriptor >= 0 { close(descriptor) } }
    guard input >= 0, errors >= 0, written >= 0 else { throw TestFailure("cannot open \(output) or /dev/null: \(String(cString: strerror(errno)))") }
    let child = try Spawned.start(arguments[0], Array(arguments.dropFirst()), input: input, output: written, error: errors)
    return try await child.exit().get().status
}
