import Foundation
import Glibc
import NIOConcurrencyHelpers
import Synchronization

/// A real headless Chromium (Debian's `chromium`, which scripts/test installs), driven over the DevTools
/// protocol on `--remote-debugging-pipe`: commands go to its fd 3 and answers come from its fd 4, each a JSON
/// object ended by a NUL. One browser serves every test (`shared`); each test opens a tab of its own (`Tab`).
/// Nothing here sleeps: every wait is for an answer or an event, with a deadline.
final class Browser: Sendable {
    static let executable = "/usr/bin/chromium"

    /// Started on first use, and ended with the test process (Chromium exits when its pipe closes).
    static let shared: Result<Browser, any Error> = Result { try Browser() }

    /// Unchecked: it holds JSON values (`[String: Any]`), touched only under `state`'s lock and handed on as
    /// the answers they are.
    private struct State: @unchecked Sendable {
        var nextID = 0
        var waiting: [Int: CheckedContinuation<Reply, any Error>] = [:]
        var events: [(method: String, session: String?, params: [String: Any])] = []
        var eventWaiters: [(id: Int, matches: @Sendable (String, String?, [String: Any]) -> Bool, continuation: CheckedContinuation<Reply, any Error>)] = []
        var ended: String?
    }

    private let commands: FileHandle
    private let state = NIOLockedValueBox(State())
    private let pid: pid_t
    let profile: URL

    private init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TestFailure("no \(Self.executable): the browser tests need Debian's chromium (scripts/test installs it)")
        }
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("parley-chromium-\(UUID().uuidString)")
        var toBrowser: [Int32] = [0, 0]
        var fromBrowser: [Int32] = [0, 0]
        guard pipe(&toBrowser) == 0, pipe(&fromBrowser) == 0 else { throw TestFailure("pipe failed") }
        // Not inherited: the child gets copies at 3 and 4 (dup2 clears the flag on those).
        for descriptor in toBrowser + fromBrowser { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toBrowser[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromBrowser[1], 4)
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        posix_spawn_file_actions_adddup2(&actions, devNull, 1)
        posix_spawn_file_actions_adddup2(&actions, devNull, 2)
        // Nothing else of this process may live on in the browser: it would hold the sockets of servers and
        // clients that other tests run at the same moment, whose closes the peers would then never see.
        // (glibc 2.34+ has it; Swift's Glibc module does not declare it.)
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            throw TestFailure("this C library lacks posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later has it)")
        }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 5)
        let arguments = [
            Self.executable, "--headless=new", "--no-sandbox", "--remote-debugging-pipe", "--user-data-dir=\(profile.path)",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars", "--window-size=1200,760",
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
            "about:blank",
        ]
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, Self.executable, &actions, nil, &argv, environ)
        close(toBrowser[0])
        close(fromBrowser[1])
        close(devNull)
        guard spawned == 0 else { throw TestFailure("cannot start \(Self.executable): error \(spawned)") }
        self.pid = pid
        commands = FileHandle(fileDescriptor: toBrowser[1], closeOnDealloc: true)
        let answers = fromBrowser[0]
        // A thread of its own, blocked in read(2) for the life of the process: the pipe has no event loop here.
        let reader = Thread { [state] in Self.read(answers, into: state) }
        reader.name = "chromium pipe"
        reader.start()
    }

    private static func read(_ descriptor: Int32, into state: NIOLockedValueBox<State>) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            pending += buffer[..<count]
            while let end = pending.firstIndex(of: 0) {
                let message = Array(pending[..<end])
                pending.removeSubrange(...end)
                guard let object = try? JSONSerialization.jsonObject(with: Data(message)) as? [String: Any] else { continue }
                dispatch(object, state)
            }
        }
        let (waiting, eventWaiters) = state.withLockedValue { state in
            state.ended = "the browser closed its pipe"
            defer { (state.waiting, state.eventWaiters) = ([:], []) }
            return (state.waiting.values, state.eventWaiters.map(\.continuation))
        }
        for continuation in waiting { continuation.resume(throwing: TestFailure("the browser went away")) }
        for continuation in eventWaiters { continuation.resume(throwing: TestFailure("the browser went away")) }
    }

    private static func dispatch(_ object: [String: Any], _ state: NIOLockedValueBox<State>) {
        if let id = object["id"] as? Int {
            guard let continuation = state.withLockedValue({ $0.waiting.removeValue(forKey: id) }) else { return }
            if let error = object["error"] as? [String: Any] {
                continuation.resume(throwing: TestFailure("DevTools error: \(error)"))
            } else {
                continuation.resume(returning: Reply(object: object["result"] as? [String: Any] ?? [:]))
            }
            return
        }
        guard let method = object["method"] as? String else { return }
        let session = object["sessionId"] as? String
        let params = object["params"] as? [String: Any] ?? [:]
        let woken = state.withLockedValue { state -> CheckedContinuation<Reply, any Error>? in
            if let index = state.eventWaiters.firstIndex(where: { $0.matches(method, session, params) }) {
                return state.eventWaiters.remove(at: index).continuation
            }
            state.events.append((method, session, params))
            if state.events.count > 2000 { state.events.removeFirst(500) }
            return nil
        }
        woken?.resume(returning: Reply(object: params))
    }

    /// Sends a command (to a tab when `session` is given) and returns its result.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil, timeout: Duration = .seconds(20)) async throws -> [String: Any] {
        let id = state.withLockedValue { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        let data = try JSONSerialization.data(withJSONObject: message) + Data([0])
        return try await withDeadline(timeout, what: method) {
            try await withCheckedThrowingContinuation { continuation in
                // Written under the lock, so that two commands never interleave on the pipe.
                let ended = self.state.withLockedValue { state -> String? in
                    guard state.ended == nil else { return state.ended }
                    state.waiting[id] = continuation
                    self.commands.write(data)
                    return nil
                }
                if let ended { continuation.resume(throwing: TestFailure(ended)) }
            }
        } onTimeout: {
            self.state.withLockedValue { $0.waiting.removeValue(forKey: id) }?.resume(throwing: TestFailure("no answer to \(method)"))
        }
    }

    /// Waits for an event that matches (one that came already, not yet taken, counts).
    @discardableResult
    func event(
        _ method: String, session: String?, timeout: Duration = .seconds(20), where predicate: @escaping @Sendable ([String: Any]) -> Bool = { _ in true }
    ) async throws -> [String: Any] {
        let matches: @Sendable (String, String?, [String: Any]) -> Bool = { $0 == method && $1 == session && predicate($2) }
        let waiterID = state.withLockedValue { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        return try await withDeadline(timeout, what: method) {
            try await withCheckedThrowingContinuation { continuation in
                let found = self.state.withLockedValue { state -> [String: Any]? in
                    if let index = state.events.firstIndex(where: { matches($0.method, $0.session, $0.params) }) {
                        return state.events.remove(at: index).params
                    }
                    state.eventWaiters.append((waiterID, matches, continuation))
                    return nil
                }
                if let found { continuation.resume(returning: Reply(object: found)) }
            }
        } onTimeout: {
            let waiter = self.state.withLockedValue { state -> CheckedContinuation<Reply, any Error>? in
                guard let index = state.eventWaiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.eventWaiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: TestFailure("no \(method) event in time"))
        }
    }

    /// Every event of a tab seen so far and not taken by `event`.
    func events(session: String) -> [(method: String, params: [String: Any])] {
        state.withLockedValue { $0.events.filter { $0.session == session }.map { ($0.method, $0.params) } }
    }

    /// Opens a tab, with what the tests read from it switched on; `viewport` sets its size.
    func openTab(width: Int = 1200, height: Int = 760) async throws -> Tab {
        let target = try await send("Target.createTarget", ["url": "about:blank"])
        guard let targetID = target["targetId"] as? String else { throw TestFailure("no target: \(target)") }
        let attached = try await send("Target.attachToTarget", ["targetId": targetID, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw TestFailure("not attached: \(attached)") }
        let tab = Tab(browser: self, session: session, targetID: targetID)
        for domain in ["Page", "Runtime", "Log"] { try await send("\(domain).enable", session: session) }
        try await send("Emulation.setDeviceMetricsOverride", ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false], session: session)
        return tab
    }
}

/// One tab of the shared browser.
struct Tab: Sendable {
    let browser: Browser
    let session: String
    let targetID: String

    func go(to url: String) async throws {
        try await browser.send("Page.navigate", ["url": url], session: session)
        try await browser.event("Page.loadEventFired", session: session)
    }

    /// Evaluates JavaScript in the page (awaiting a promise it returns); returns its value.
    @discardableResult
    func run(_ script: String, timeout: Duration = .seconds(20)) async throws -> Any? {
        let result = try await browser.send(
            "Runtime.evaluate", ["expression": script, "awaitPromise": true, "returnByValue": true], session: session, timeout: timeout
        )
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw TestFailure("the page threw: \(exception["exception"].map { "\($0)" } ?? "\(exception)")")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Waits until `condition` (a JavaScript expression) is true in the page, checking on every animation frame.
    func waitUntil(_ condition: String, timeout: Duration = .seconds(20), _ what: String) async throws {
        let milliseconds = Int(timeout.components.seconds * 1000)
        let met = try await run(
            """
            new Promise((resolve) => {
              const end = Date.now() + \(milliseconds);
              const check = () => {
                let value = false;
                try { value = Boolean(\(condition)); } catch (e) {}
                if (value) return resolve(true);
                if (Date.now() > end) return resolve(false);
                setTimeout(check, 25);
              };
              check();
            })
            """,
            timeout: timeout + .seconds(10)
        )
        guard met as? Bool == true else {
            throw TestFailure("waited \(timeout) for \(what); the page shows: \(try await text("document.body.innerText"))")
        }
    }

    func text(_ expression: String) async throws -> String {
        try await run("String(\(expression))") as? String ?? ""
    }

    /// Types into an input the way the page sees a user type: its value, then an input event.
    func type(_ text: String, into selector: String) async throws {
        try await run(
            """
            (() => { const field = document.querySelector(\(Self.quoted(selector))); field.focus();
              field.value = \(Self.quoted(text)); field.dispatchEvent(new Event("input", { bubbles: true })); })()
            """
        )
    }

    /// Presses Enter in the focused field, as a key event (the message box sends on Enter).
    func pressEnter(in selector: String) async throws {
        try await run(
            """
            document.querySelector(\(Self.quoted(selector))).dispatchEvent(
              new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }))
            """
        )
    }

    func click(_ selector: String) async throws {
        try await run("document.querySelector(\(Self.quoted(selector))).click()")
    }

    /// The page's errors so far: console errors, uncaught exceptions, and the browser's own error log (a
    /// refused script or style, a CSP violation, a failed request).
    func errors() -> [String] {
        browser.events(session: session).compactMap { event in
            switch event.method {
            case "Runtime.consoleAPICalled" where event.params["type"] as? String == "error":
                return "console.error: \(event.params["args"] ?? "")"
            case "Runtime.exceptionThrown":
                return "exception: \(event.params["exceptionDetails"] ?? "")"
            case "Log.entryAdded":
                let entry = event.params["entry"] as? [String: Any]
                return entry?["level"] as? String == "error" ? "log: \(entry?["text"] ?? "") \(entry?["url"] ?? "")" : nil
            default:
                return nil
            }
        }
    }

    /// A PNG of what the tab shows.
    func screenshot() async throws -> Data {
        let shot = try await browser.send("Page.captureScreenshot", ["format": "png"], session: session)
        guard let base64 = shot["data"] as? String, let data = Data(base64Encoded: base64) else { throw TestFailure("no screenshot") }
        return data
    }

    /// Keeps a screenshot when the test failed: in the temporary folder, named for the test, its path said.
    func keepScreenshot(named name: String) async -> String? {
        guard let data = try? await screenshot() else { return nil }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parley-browser-\(name)-\(UUID().uuidString.prefix(8)).png")
        try? data.write(to: path)
        return path.path
    }

    func close() async {
        _ = try? await browser.send("Target.closeTarget", ["targetId": targetID])
    }

    static func quoted(_ text: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [text])
        let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }
}

/// A JSON object from the browser, handed from task to task (unchecked: plain JSON values, never mutated).
fileprivate struct Reply: @unchecked Sendable {
    let object: [String: Any]
}

/// Runs `body`; when `timeout` passes first, `onTimeout` must make it return (by failing what it waits for).
private func withDeadline(
    _ timeout: Duration, what: String, _ body: @escaping @Sendable () async throws -> Reply, onTimeout: @escaping @Sendable () -> Void
) async throws -> [String: Any] {
    try await withThrowingTaskGroup(of: Reply?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            // The deadline, not a wait for the event: cancelled as soon as the body is done.
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { onTimeout() }
            return nil
        }
        while let next = try await group.next() {
            if let value = next {
                group.cancelAll()
                return value.object
            }
        }
        throw TestFailure("\(what): no result")
    }
}
