import Logging
import NIOPosix
import ParleyCore
import ParleyStore
import Synchronization

/// Failed logins, counted per key (an address, an account): more than `limit` in `window` and that key must
/// wait. Bounded: old entries go when the table grows.
final class LoginThrottle: Sendable {
    private struct Entry {
        var failures: Int
        var since: ContinuousClock.Instant
    }

    let limit: Int
    let window: Duration
    private let entries = Mutex<[String: Entry]>([:])

    init(limit: Int = 5, window: Duration = .seconds(60)) {
        self.limit = limit
        self.window = window
    }

    /// How long the caller must wait before trying again, if any of `keys` is over the limit.
    func wait(for keys: [String], now: ContinuousClock.Instant = .now) -> Duration? {
        entries.withLock { entries in
            keys.compactMap { key -> Duration? in
                guard let entry = entries[key], entry.failures >= limit else { return nil }
                let left = window - entry.since.duration(to: now)
                return left > .zero ? left : nil
            }.max()
        }
    }

    func failed(_ keys: [String], now: ContinuousClock.Instant = .now) {
        entries.withLock { entries in
            if entries.count > 10_000 { entries = entries.filter { $0.value.since.duration(to: now) < window } }
            for key in keys {
                var entry = entries[key] ?? Entry(failures: 0, since: now)
                if entry.since.duration(to: now) >= window { entry = Entry(failures: 0, since: now) }
                entry.failures += 1
                entries[key] = entry
            }
        }
    }
}

/// Account work for connections: checks and sets passwords (scrypt runs on NIO's thread pool, never under the
/// hub's lock or on the connection's task), talks to the store, and tells the hub the outcome.
struct AccountDesk: Sendable {
    let store: any AccountStore
    let hub: ChatHub<Fanout>
    let throttle = LoginThrottle()
    let logger: Logger

    /// The account, if `password` is its password; throttled per address and per account.
    func verify(nick: String, password: String, from address: String) async throws(ChatError) -> Account {
        let keys = ["address \(address)", "account \(nick.lowercased())"]
        if let wait = throttle.wait(for: keys) {
            throw ChatError(.tooManyAttempts, "Too many failed logins. Try again in \(Int(wait.components.seconds) + 1) seconds.")
        }
        let account = try? await store.account(named: nick)
        let matches: Bool
        if let account {
            matches = (try? await NIOThreadPool.singleton.runIfActive { PasswordHasher.verify(password, against: account.credential) }) ?? false
        } else {
            matches = false
        }
        guard let account, matches else {
            throttle.failed(keys)
            logger.notice("failed login", metadata: ["account": "\(nick)", "peer": "\(address)"])
            throw ChatError(.loginFailed, "Wrong nickname or password.")
        }
        return account
    }

    func register(_ session: SessionID, password: String) async throws(ChatError) {
        guard let nick = hub.nick(of: session) else { return }
        guard !hub.isRegistered(nick) else {
            throw ChatError(.nickRegistered, "\(nick) is registered already. Log in with /login \(nick) PASSWORD.")
        }
        let account = Account(name: nick, credential: try await credential(for: password))
        do {
            try await store.create(account)
            try? await store.audit(actor: nick, action: "register", target: nick, detail: "")
        } catch AccountError.exists {
            throw ChatError(.nickRegistered, "\(nick) is registered already. Log in with /login \(nick) PASSWORD.")
        } catch {
            throw ChatError(.notStored, "The account could not be stored; try again later.")
        }
        try hub.authenticate(session, as: account)
        hub.tell(session, .notice("The nickname \(nick) is now registered to you. Next time, log in with /login \(nick) PASSWORD."))
    }

    func login(_ session: SessionID, nick: String, password: String, from address: String) async throws(ChatError) {
        let account = try await verify(nick: nick, password: password, from: address)
        try hub.authenticate(session, as: account)
    }

    func changePassword(_ session: SessionID, old: String, new: String, from address: String) async throws(ChatError) {
        guard let name = hub.account(of: session) else {
            throw ChatError(.notLoggedIn, "Log in first: /login NICK PASSWORD (or /register PASSWORD to register your nick).")
        }
        let account = try await verify(nick: name, password: old, from: address)
        do {
            try await store.update(account.name, credential: try await credential(for: new))
            try? await store.audit(actor: account.name, action: "passwd", target: account.name, detail: "")
        } catch let error as ChatError {
            throw error
        } catch {
            throw ChatError(.notStored, "The new password could not be stored; the old one still works.")
        }
        hub.tell(session, .notice("Your password has been changed."))
    }

    private func credential(for password: String) async throws(ChatError) -> Credential {
        guard password.count >= PasswordHasher.minimumLength else {
            throw ChatError(.usage, "A password has at least \(PasswordHasher.minimumLength) characters.")
        }
        guard let credential = try? await NIOThreadPool.singleton.runIfActive({ try PasswordHasher.credential(for: password) }) else {
            throw ChatError(.notStored, "The password could not be processed; try again.")
        }
        return credential
    }
}
