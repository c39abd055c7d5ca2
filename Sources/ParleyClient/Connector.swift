import NIOCore
import ParleyCore
import ParleyProtocols
import ParleyTerminal
import Synchronization

/// Keeps the full-screen client connected: connects, says hello, forwards events, and after a drop retries
/// with exponential backoff and jitter until cancelled. `/reconnect` cuts the current connection (or the
/// wait) short. Given several servers (nodes of one chat), a server that does not answer is passed over for
/// the next at once; the backoff counts only whole rounds of them. After a drop the server it was on is tried
/// first: a restart is the commonest drop.
final class Connector: Sendable {
    enum Report: Sendable {
        case connecting
        case connected
        case event(ChatEvent)
        case disconnected(retryingIn: Duration)
        /// Connected to another of the servers than last time. Its message ids are its own (until several nodes
        /// share one log), so the connector resumes nothing there, and the client forgets what it had seen.
        case failedOver(to: ServerAddress, from: ServerAddress)
    }

    /// How long a server has to welcome the client once connected: one that accepts and then says nothing (a
    /// frozen process, a proxy in front of a dead node) counts as not answering.
    static let welcomeDeadline: TimeAmount = .seconds(15)

    private struct State {
        var writer: NIOAsyncChannelOutboundWriter<ByteBuffer>?
        var channel: (any Channel)?
        var wake: CheckedContinuation<Void, Never>?
        var skipBackoff = false
    }

    let addresses: [ServerAddress]
    /// The server connected to, or to try next (an index into `addresses`).
    let current: Mutex<Int>
    /// How the first server was trusted (decided, perhaps asked, at the first connection); the others by their
    /// pins or the system (`ServerLink.failoverTrust`). Unused without TLS.
    let firstTrust: ServerTrust?
    let tls: Bool
    /// The nick to say hello with; the client updates it when the server renames the user.
    let nick: Mutex<String>
    /// The last message id seen per room, for a resuming hello after a reconnect.
    let resume = Mutex<[String: Int64]>([:])
    /// Whether the server should put the user in #general (`join_general` in `hello`): yes at first, and on a
    /// reconnect only if the user was still in it.
    let joinsGeneral = Mutex(true)
    /// The password of the account named `nick`, sent in every hello with that nick (so a reconnect logs in
    /// again); not with another nick the user took since, which it would not open.
    let password: Mutex<(nick: String, secret: String)?>
    private let state = Mutex(State())
    let serverPassword: String?

    init(
        addresses: [ServerAddress], connected: Int = 0, trust: ServerTrust?, tls: Bool? = nil, nick: String, password: String? = nil,
        serverPassword: String? = nil
    ) {
        self.password = Mutex(password.map { (nick, $0) })
        self.addresses = addresses
        self.current = Mutex(connected)
        self.firstTrust = trust
        self.tls = tls ?? (trust != nil)
        self.firstConnected = connected
        self.nick = Mutex(nick)
        self.serverPassword = serverPassword
    }

    func run(first: ServerLink.Channel, report: @escaping @Sendable (Report) -> Void) async {
        var backoff = Backoff()
        var next: ServerLink.Channel? = first
        let clock = ContinuousClock()
        /// When the connection was lost: the backoff stays short for the first minute of an outage.
        var down = clock.now
        /// Servers tried without success since the last connection or wait: a whole round of them waits.
        var failed = 0
        /// The server the last connection was to, so that reaching another one is said.
        var last = current.withLock { $0 }
        while !Task.isCancelled {
            let channel: ServerLink.Channel
            if let ready = next {
                channel = ready
                next = nil
            } else {
                let index = current.withLock { $0 }
                let address = addresses[index]
                report(.connecting)
                do {
                    channel = try await ServerLink.connect(address, trust: trust(for: index))
                    if index != last {
                        resume.withLock { $0 = [:] }
                        report(.failedOver(to: address, from: addresses[last]))
                        last = index
                    }
                } catch {
                    // A changed or unverifiable certificate is said, not retried in silence.
                    if let error = error as? TrustError { report(.event(.notice(error.description))) }
                    await passOver(index, failed: &failed, backoff: &backoff, down: down, report: report)
                    continue
                }
            }
            // The backoff starts again only after a welcome: a server that accepts and then closes (a wrong server
            // password, too many connections from here) must not be hit twice a second for ever.
            let welcomed = await serve(channel, report: report)
            guard !Task.isCancelled else { break }
            if welcomed {
                backoff.reset()
                down = clock.now
                failed = 0
            } else {
                await passOver(current.withLock { $0 }, failed: &failed, backoff: &backoff, down: down, report: report)
                continue
            }
            let skip = state.withLock { state in defer { state.skipBackoff = false }; return state.skipBackoff }
            await pause(skip ? .zero : backoff.next(elapsed: clock.now - down), report: report)
        }
    }

    /// After server `index` did not answer (or did not welcome): the next one is tried at once, and only a whole
    /// round of them without an answer waits out the backoff.
    private func passOver(
        _ index: Int, failed: inout Int, backoff: inout Backoff, down: ContinuousClock.Instant, report: @escaping @Sendable (Report) -> Void
    ) async {
        failed += 1
        current.withLock { $0 = (index + 1) % addresses.count }
        guard failed >= addresses.count else { return }
        failed = 0
        await pause(backoff.next(elapsed: ContinuousClock.now - down), report: report)
    }

    /// The first server connected to, whose trust was decided for it.
    private let firstConnected: Int

    private func trust(for index: Int) -> ServerTrust? {
        guard tls else { return nil }
        return index == firstConnected ? firstTrust : ServerLink.failoverTrust(for: addresses[index])
    }

    /// The hello this connector says: the nick, its password when known, where to resume.
    func hello() -> ByteBuffer {
        let nick = nick.withLock { $0 }
        let password = password.withLock { $0 }.flatMap { $0.nick.lowercased() == nick.lowercased() ? $0.secret : nil }
        return JSONCodec().encodeHello(
            nick: nick, password: password, resume: resume.withLock { $0 }, serverPassword: serverPassword, joinGeneral: joinsGeneral.withLock { $0 }
        )
    }

    /// Sends a frame; false when there is no connection.
    func send(_ frame: ByteBuffer) async -> Bool {
        guard let writer = state.withLock({ $0.writer }) else { return false }
        do {
            try await writer.write(frame)
            return true
        } catch {
            return false
        }
    }

    var isConnected: Bool { state.withLock { $0.writer != nil } }

    /// Drops the connection and connects again after the backoff's wait.
    func retry() {
        state.withLock { $0.channel }?.close(promise: nil)
    }

    /// Drops the connection and connects again at once.
    func reconnect() {
        let (channel, wake) = state.withLock { state in
            state.skipBackoff = true
            defer { state.wake = nil }
            return (state.channel, state.wake)
        }
        channel?.close(promise: nil)
        wake?.resume()
    }

    /// Serves one connection until it ends; true when the server welcomed the client on it.
    @discardableResult
    private func serve(_ channel: ServerLink.Channel, report: @escaping @Sendable (Report) -> Void) async -> Bool {
        var welcomed = false
        let greeted = Atomic<Bool>(false)
        let deadline = channel.channel.eventLoop.scheduleTask(in: Self.welcomeDeadline) { [channel = channel.channel] in
            if !greeted.load(ordering: .relaxed) { channel.close(promise: nil) }
        }
        defer { deadline.cancel() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                state.withLock {
                    $0.writer = outbound
                    $0.channel = channel.channel
                }
                defer { state.withLock { $0.writer = nil; $0.channel = nil } }
                report(.connected)
                try await outbound.write(hello())
                let codec = JSONCodec()
                for try await frame in inbound {
                    guard case .line(let line) = frame else { continue }
                    let text = String(decoding: line.readableBytesView, as: UTF8.self)
                    if let event = codec.decodeEvent(text) {
                        if case .welcome = event {
                            welcomed = true
                            greeted.store(true, ordering: .relaxed)
                        }
                        report(.event(event))
                    } else if text.hasPrefix("!!! ") {
                        // The one plain line of a connection refused before it began (too many from this address).
                        report(.event(.notice(String(text.dropFirst(4)))))
                    }
                }
            }
        } catch {
            // A dropped connection ends here like a closed one; the caller reconnects.
        }
        return welcomed
    }

    /// Waits `delay` before the next attempt, unless `/reconnect` or cancellation cuts it short; says how long is
    /// left every second, so the client can count down.
    private func pause(_ delay: Duration, report: @escaping @Sendable (Report) -> Void) async {
        for left in Self.countdown(from: delay) {
            report(.disconnected(retryingIn: left))
            guard left > .zero else { return }
            let step = Self.countdownStep(left)
            let woken = await withTaskGroup(of: Bool.self) { group in
                group.addTask { (try? await Task.sleep(for: step)) == nil }
                group.addTask {
                    await self.waitForWake()
                    return true
                }
                defer { group.cancelAll() }
                return await group.next() ?? true
            }
            if woken || Task.isCancelled { return }
        }
    }

    /// The wait after a countdown's report of `left`: a second, or what is left of the last one. So the status
    /// line says 3, 2, 1 (2.5, 1.5, 0.5 for a wait of 2.5 s), one number a second.
    static func countdownStep(_ left: Duration) -> Duration { min(left, .seconds(1)) }

    /// Every value a countdown from `delay` reports, when nothing cuts it short.
    static func countdown(from delay: Duration) -> [Duration] {
        var values = [delay]
        var left = delay
        while left > .zero {
            left -= countdownStep(left)
            if left > .zero { values.append(left) }
        }
        return values
    }

    private func waitForWake() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let wakeNow = state.withLock { state -> Bool in
                    // A /reconnect skips one wait, then the backoff holds again.
                    if state.skipBackoff {
                        state.skipBackoff = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.wake = continuation
                    return false
                }
                if wakeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state in defer { state.wake = nil }; return state.wake }?.resume()
        }
    }
}
