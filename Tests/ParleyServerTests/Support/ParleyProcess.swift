import Foundation
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import Synchronization

/// The real `parley` executable as a subprocess, the way a user runs it: its stderr (the log) and stdout (the
/// console, or what `connect` prints) are collected, and waits have deadlines.
final class ParleyProcess: Sendable {
    enum Input {
        /// A pseudo-terminal, so the console is on; write to it with `type(_:)`.
        case terminal
        /// A pipe; write to it with `type(_:)`, end it with `closeInput()`.
        case pipe
        case nullDevice
        /// Standard input, output and error all on one pseudo-terminal, whose other end is read only by
        /// `readTerminal(until:)`: a console terminal that stops reading when the test stops.
        case sharedTerminal
    }

    let child: Spawned
    /// The `--data-dir` of a server started with `serve`.
    let dataDirectory: URL
    let log: OutputCollector
    let output: OutputCollector
    private let terminal: FileHandle?
    /// Set once the process has ended (reaped by `ChildExit`).
    private let exit: EventLoopFuture<ChildExit>
    private let ended = NIOLockedValueBox(false)

    /// Starts `parley serve` on 127.0.0.1, port 0, in a fresh data folder, and waits until it listens.
    static func serve(
        _ arguments: [String] = [], input: Input = .nullDevice, dataDirectory: String? = nil, environment: [String: String] = [:]
    ) async throws -> (ParleyProcess, port: Int) {
        let data = dataDirectory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("parley-test-\(UUID().uuidString)")
        let server = try ParleyProcess(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--irc-port", "0", "--http-port", "0", "--data-dir", data.path, "--server-name", "proc.parley"]
                + arguments,
            input: input,
            dataDirectory: data,
            environment: environment
        )
        let line = try await server.log.waitFor { $0.contains("listening") && $0.contains("door=lines ") }
        guard let port = line.split(separator: ":").last.flatMap({ Int($0.prefix(while: \.isNumber)) }) else {
            throw TestFailure("no port in \(line)")
        }
        return (server, port)
    }

    /// Runs a shell command line (for the odd tool a test needs, like pkill).
    static func shell(_ command: String) throws -> ParleyProcess {
        try ParleyProcess(["-c", command], input: .nullDevice, executable: URL(fileURLWithPath: "/bin/sh"))
    }

    init(
        _ arguments: [String], input inputKind: Input, dataDirectory: URL = FileManager.default.temporaryDirectory,
        executable: URL = ParleyProcess.executable, environment: [String: String] = [:]
    ) throws {
        var inputPipe: FileHandle?
        self.dataDirectory = dataDirectory
        // Pipes whose descriptors close on exec: a tmux server spawned by another test at that moment would
        // otherwise inherit a write end and keep it for its whole life, so this process's output would never
        // reach end of file (found by `OutputCollector.writersHolding`).
        let stderr = try ClosingPipe()
        let stdout = try ClosingPipe()
        /// The child's standard input, and whether this process's copy closes once the child has it.
        let input: (descriptor: CInt, owned: Bool)
        var (output, error) = (stdout.writing.fileDescriptor, stderr.writing.fileDescriptor)
        switch inputKind {
        case .terminal:
            var (master, slave): (Int32, Int32) = (0, 0)
            guard openpty(&master, &slave, nil, nil, nil) == 0 else { throw TestFailure("openpty failed") }
            for end in [master, slave] { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            input = (slave, true)
            terminal = FileHandle(fileDescriptor: master, closeOnDealloc: true)
        case .pipe:
            let pipe = try ClosingPipe()
            input = (pipe.reading.fileDescriptor, false)
            inputPipe = pipe.reading
            terminal = pipe.writing
        case .nullDevice:
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard null >= 0 else { throw TestFailure("cannot open /dev/null: \(String(cString: strerror(errno)))") }
            input = (null, true)
            terminal = nil
        case .sharedTerminal:
            var (master, slave): (Int32, Int32) = (0, 0)
            guard openpty(&master, &slave, nil, nil, nil) == 0 else { throw TestFailure("openpty failed") }
            for end in [master, slave] { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            input = (slave, true)
            (output, error) = (slave, slave)
            terminal = FileHandle(fileDescriptor: master, closeOnDealloc: true)
        }
        log = OutputCollector(stderr.reading)
        self.output = OutputCollector(stdout.reading)
        defer { if input.owned { close(input.descriptor) } }
        child = try Spawned.start(
            executable.path, arguments, environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 },
            input: input.descriptor, output: output, error: error
        )
        // The child has its copies; with ours closed, end of file comes when the child's go.
        try stderr.writing.close()
        try stdout.writing.close()
        try inputPipe?.close()
        exit = child.exit()
        exit.whenComplete { [ended] _ in ended.withLockedValue { $0 = true } }
    }

    /// Reads the shared terminal until a line matches, then stops reading it; gives up after `timeout`.
    func readTerminal(timeout: Duration = .seconds(15), until predicate: @escaping @Sendable (String) -> Bool) async throws -> String {
        guard let descriptor = terminal?.fileDescriptor else { throw TestFailure("this process has no terminal") }
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        Thread.detachNewThread {
            let deadline = ContinuousClock.now + timeout
            var text = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 100) > 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                text += String(decoding: buffer[..<count], as: UTF8.self)
                if let line = text.components(separatedBy: "\n").first(where: predicate) { return promise.succeed(line) }
            }
            promise.fail(TestFailure("the terminal never showed it; it showed:\n\(text)"))
        }
        return try await promise.futureResult.get()
    }

    /// A test that fails before it stops its server must not leave the server running.
    deinit {
        if !hasEnded { kill(child.pid, SIGKILL) }
    }

    /// Types a line at the process's terminal or into its input pipe.
    func type(_ line: String) throws {
        guard let terminal else { throw TestFailure("this process has no input") }
        try terminal.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The process id.
    var pid: Int32 { child.pid }

    /// Whether the process has ended.
    var hasEnded: Bool { ended.withLockedValue { $0 } }

    /// Ends the input pipe (end of input for the process).
    func closeInput() throws {
        try terminal?.close()
    }

    func signal(_ signal: Int32) {
        kill(child.pid, signal)
    }

    /// Waits for the process to exit and returns its status; kills it and fails after the deadline (generous: a
    /// loaded machine running the whole suite has taken over 15 s to see a client exit).
    func waitForExit(timeout: TimeAmount = .seconds(40)) async throws -> Int32 {
        let pid = child.pid
        let deadline = exit.eventLoop.scheduleTask(in: timeout) { kill(pid, SIGKILL) }
        let ending = try await exit.get()
        deadline.cancel()
        guard !ending.signaled else {
            throw TestFailure("parley did not exit in time (killed); log:\n\(log.text)")
        }
        // The exit can be reported before the reader threads have read the last of the pipes (on a loaded
        // machine, all of it): what the process wrote is only complete at end of file.
        try await log.waitForEndOfFile()
        try await output.waitForEndOfFile()
        return ending.status
    }

    /// `.build/<triple>/debug/parley`, beside the test bundle that `swift test` runs.
    static let executable: URL = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("parley")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/parley")
    }()
}

/// Collects what a subprocess writes to one pipe and lets tests wait for a line, with a deadline.
final class OutputCollector: Sendable {
    private struct State {
        var text = ""
        var waiters: [(predicate: @Sendable (String) -> Bool, promise: EventLoopPromise<String>)] = []
    }

    private let state = Mutex(State())
    private let endOfFile = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
    private let descriptor: Int32

    /// Reads on a thread of its own until end of file. (Not `readabilityHandler`: its dispatch source has
    /// crashed the test process on Linux when a pipe closed while a handler ran.)
    init(_ handle: FileHandle) {
        // read(2) rather than `availableData`, which turns an interrupted read (EINTR: a signal for the test
        // process, such as a child's exit) into a fatal error.
        let descriptor = handle.fileDescriptor
        self.descriptor = descriptor
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var pending: [UInt8] = []
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                // Whole characters only: a read can end inside one.
                pending += buffer[..<count]
                let complete = Self.completeUTF8Prefix(pending)
                append(String(decoding: pending[..<complete], as: UTF8.self))
                pending.removeFirst(complete)
            }
            if !pending.isEmpty { append(String(decoding: pending, as: UTF8.self)) }
            try? handle.close()
            endOfFile.succeed()
        }
    }

    var text: String { state.withLock { $0.text } }

    /// How many leading bytes form whole UTF-8 characters (a sequence cut at the end is left for later).
    static func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        var start = bytes.count
        // Back up over at most three continuation bytes to the start of the last character.
        while start > 0, bytes.count - start < 4, bytes[start - 1] & 0xC0 == 0x80 { start -= 1 }
        guard start > 0 else { return bytes.count }
        let lead = bytes[start - 1]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return bytes.count - (start - 1) >= length ? bytes.count : start - 1
    }

    /// Waits until everything the process wrote has been read (its end of the pipe is closed).
    ///
    /// Called once the process has exited, so what it wrote is all in the pipe. Now and then, in full runs, end of
    /// file did not come although the process had exited: another process held the pipe's write end. Past
    /// `timeout`, what is in the pipe is read without waiting, and the holders are named in the test's output
    /// (so that the next run says who they are) rather than failing the test for them.
    func waitForEndOfFile(timeout: TimeAmount = .seconds(15)) async throws {
        let loop = endOfFile.futureResult.eventLoop
        let result = loop.makePromise(of: Void.self)
        let settled = NIOLockedValueBox(false)
        @Sendable func settle(_ outcome: Result<Void, any Error>) {
            guard settled.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            result.completeWith(outcome)
        }
        let timer = loop.scheduleTask(in: timeout) { [self] in
            print("note: a finished process's output pipe was still open after \(timeout); held by: \(writersHolding())")
            drainWithoutWaiting()
            settle(.success(()))
        }
        endOfFile.futureResult.whenSuccess {
            timer.cancel()
            settle(.success(()))
        }
        try await result.futureResult.get()
    }
    var lines: [String] { text.split(separator: "\n").map(String.init) }

    /// What is in the pipe now, read without blocking.
    private func drainWithoutWaiting() {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            append(String(decoding: buffer[..<count], as: UTF8.self))
        }
    }

    /// The processes that have this pipe open (its inode in /proc/PID/fd), with their command lines.
    private func writersHolding() -> String {
        guard let pipe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)") else { return "?" }
        var holders: [String] = []
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            guard fds.contains(where: { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == pipe }) else { continue }
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.replacingOccurrences(of: "\0", with: " ") ?? "?"
            holders.append("\(pid) (\(command.prefix(120)))")
        }
        return "\(pipe): " + holders.joined(separator: ", ")
    }

    /// Waits for a line that matches (lines already received count) and returns it.
    @discardableResult
    func waitFor(timeout: TimeAmount = .seconds(15), _ predicate: @escaping @Sendable (String) -> Bool) async throws -> String {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: String.self)
        let found = state.withLock { state -> String? in
            if let line = state.text.split(separator: "\n").map(String.init).first(where: predicate) { return line }
            state.waiters.append((predicate, promise))
            return nil
        }
        if let found {
            promise.succeed(found)
        } else {
            let snapshot = self
            loop.scheduleTask(in: timeout) {
                promise.fail(TestFailure("timed out waiting for output; got:\n\(snapshot.text)"))
            }
        }
        return try await promise.futureResult.get()
    }

    private func append(_ chunk: String) {
        let ready = state.withLock { state -> [(EventLoopPromise<String>, String)] in
            state.text += chunk
            let lines = state.text.split(separator: "\n").map(String.init)
            var ready: [(EventLoopPromise<String>, String)] = []
            state.waiters.removeAll { waiter in
                guard let line = lines.first(where: waiter.predicate) else { return false }
                ready.append((waiter.promise, line))
                return true
            }
            return ready
        }
        for (promise, line) in ready { promise.succeed(line) }
    }
}

/// A pipe whose ends close on exec: no other child spawned later inherits it (`posix_spawn`'s `dup2` gives the
/// child its own copy, without the flag). `pipe2(O_CLOEXEC)` would leave no moment without the flag, but Swift's
/// Glibc does not show it; the flag is set at once instead.
struct ClosingPipe {
    let reading: FileHandle
    let writing: FileHandle

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw TestFailure("pipe failed: \(errno)") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        reading = FileHandle(fileDescriptor: ends[0], closeOnDealloc: true)
        writing = FileHandle(fileDescriptor: ends[1], closeOnDealloc: true)
    }
}
