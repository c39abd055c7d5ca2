import Logging
import NIOPosix
import ParleyCore
import ParleyStore
import Synchronization

/// Login attempts, counted per key (an address, an account) over a sliding `window`: past its limit a key
/// must wait. An attempt is counted *before* the password is checked (and refunded when it was right), so
/// parallel connections cannot run more guesses than the limit. Bounded: old entries go when it grows.
final class LoginThrottle: Sendable {
    private struct Entry {
        var attempts: Int
        var since: ContinuousClock.Instant
    }

    let window: Duration
    private let entries = Mutex<[String: Entry]>([:])

    init(window: Duration = .seconds(60)) {
        self.window = window
    }

    /// Counts an attempt for every key, or returns how long to wait when one of them is over its limit.
    func begin(_ keys: [(key: String, limit: Int)], now: ContinuousClock.Instant = .now) -> Duration? {
        entries.withLock { entries in
            if entries.count > 10_000 {
                entries = entries.filter { $0.value.since.duration(to: now) < window }
                if entries.count > 10_000 { entries.removeAll() }
            }
            var wait: Duration?
            for (key, limit) in keys {
                var entry = entries[key] ?? Entry(attempts: 0, since: now)
                if entry.since.duration(to: now) >= window { entry = Entry(attempts: 0, since: now) }
                if entry.attempts >= limit { wait = max(wait ?? .zero, window - entry.since.duration(to: now)) }
                entries[key] = entry
            }
            guard wait == nil else { return wait }
            for (key, _) in keys { entries[key]!.attempts += 1 }
            return nil
        }
    }

    /// The password was right: the attempt does not count.
    func refund(_ keys: [(key: String, limit: Int)]) {
        entries.withLock { entries in
            for (key, _) in keys { entries[key]?.attempts -= 1 }
        }
    }
}

/// Password hashing gets a thread of its own: scrypt is deliberately slow, and on the shared pool it would
/// hold up SQLite (and so every message) during a burst of logins.
let hashingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    return pool
}()

/// Account work for connections: checks and sets passwords (scrypt runs on NIO's thread pool, never under the
/// hub's lock or on the connection's task), talks to the store, and tells the hub the outcome.
struct AccountDesk: Sendable {
    let store: any AccountStore
    let hub: ChatHub<Fanout>
    let throttle = LoginThrottle()
    let logger: Logger

    /// The account, if `password` is its password; throttled per address and per account.
    func verify(nick: String, password: String, from address: String) async throws(ChatError) -> Account {
        // Five a minute from one address; twenty a minute against one account from anywhere, which bounds
        // guessing without letting one address lock the owner out.
        let keys = [(key: "address \(address)", limit: 5), (key: "account \(nick.lowercased())", limit: 20)]
        if let wait = throttle.begin(keys) {
            throw ChatError(.tooManyAttempts, "Too many failed logins. Try again in \(Int(wait.components.seconds) + 1) seconds.")
        }
        let account = try? await store.account(named: nick)
        let matches: Bool
        if let account {
            matches = (try? await hashingPool.runIfActive { PasswordHasher.verify(password, against: account.credential) }) ?? false
        } else {
            matches = false
        }
        guard let account, matches else {
            logger.notice("failed login", metadata: ["account": "\(nick)", "peer": "\(address)"])
            throw ChatError(.loginFailed, "Wrong nickname or password.")
        }
        throttle.refund(keys)
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
        hub.authenticate(session, as: account)
        hub.tell(session, .notice("The nickname \(nick) is now registered to you. Next time, log in with /login \(nick) PASSWORD."))
    }

    func login(_ session: SessionID, nick: String, password: String, from address: String) async throws(ChatError) {
        let account = try await verify(nick: nick, password: password, from: address)
        hub.authenticate(session, as: account)
    }

    func changePassword(_ session: SessionID, old: String, new: String, from address: String) async throws(ChatError) {
        guard let name = hub.account(of: session) else {
            throw ChatError(.notLoggedIn, "Log in first: /login NICK PASSWORD (or /register PASSWORD to register your nick).")
        }
        let account: Account
        do {
            account = try await verify(nick: name, password: old, from: address)
        } catch where error.code == .loginFailed {
            // The nick is not in question here: only the old password was.
            throw ChatError(.loginFailed, "That is not your current password; your password was not changed.")
        }
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
        guard let credential = try? await hashingPool.runIfActive({ try PasswordHasher.credential(for: password) }) else {
            throw ChatError(.notStored, "The password could not be processed; try again.")
        }
        return credential
    }
}
