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
/// Not Foundation's `Process`: `tmux new-session` forks the tmux server, which inherits whatever Process uses
/// to watch its child, so Process never reports the exit. `waitpid` on a thread of its own does.
private func spawn(_ arguments: [String], output: String) async throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    // The tmux server outlives this call, so it must not inherit other processes' pipes (which would then
    // never reach end of file): every descriptor above 2 open now is closed in the child.
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    for descriptor in open.compactMap({ Int32($0) }) where descriptor > 2 {
        posix_spawn_file_actions_addclose(&actions, descriptor)
    }
    // Nor the signal mask of the test thread (the runtime blocks most signals on its threads): a tmux server
    // that blocks SIGTERM outlives `kill-server` and every test run.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var defaults = sigset_t()
    sigfillset(&defaults)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
    guard result == 0 else { throw TestFailure("cannot run \(arguments[0]): \(result)") }
    let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Int32.self)
    let child = pid
    Thread.detachNewThread {
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        promise.succeed((status >> 8) & 0xFF)
    }
    return try await promise.futureResult.get()
}
