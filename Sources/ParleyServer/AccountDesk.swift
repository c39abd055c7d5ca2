import Logging
import NIOCore
import NIOPosix
import ParleyCore
import ParleyStore
import Synchronization

/// Password hashing: scrypt is deliberately slow (tens of milliseconds and 16 MiB each), so it has threads of
/// its own — on NIO's shared pool it would hold up SQLite during a burst of logins — and a bound on what may
/// wait for them: past it a login or registration is refused at once ("busy"), so a flood of them cannot make
/// every real user wait seconds.
final class PasswordHashing: Sendable {
    let pool: NIOThreadPool
    /// Hashes running or waiting, at most.
    let limit: Int
    private let pending = Atomic<Int>(0)

    /// `limit`: a server restart brings every client back at once, each logging in; 64 waiting hashes are a
    /// second or two at worst, while a flood from many addresses is turned away instead of queued for minutes.
    init(threads: Int = max(2, System.coreCount), limit: Int = 64) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        self.limit = limit
    }

    func run<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws(ChatError) -> Result {
        guard pending.wrappingAdd(1, ordering: .relaxed).oldValue < limit else {
            pending.wrappingSubtract(1, ordering: .relaxed)
            throw ChatError(.busy, "The server is busy checking passwords; try again in a moment.")
        }
        defer { pending.wrappingSubtract(1, ordering: .relaxed) }
        do {
            return try await pool.runIfActive(work)
        } catch let error as ChatError {
            throw error
        } catch {
            throw ChatError(.busy, "The password could not be checked just now; try again in a moment.")
        }
    }
}

/// How many tries a minute: failed logins per address (an IPv6 /64), failed logins against one account, and
/// new accounts per address and overall.
struct AccountLimits: Sendable {
    var failuresPerAddress = 5
    var failuresPerAccount = 20
    /// What a login from an address with no failures waits while its account is under attack.
    var attackDelay: Duration = .seconds(1)
    var registrationsPerAddress = 3
    var registrationWindow: Duration = .seconds(600)
    var registrationsPerMinute = 30
    /// scrypt's N for new passwords (see `PasswordHasher`).
    var passwordCost = PasswordHasher.defaultCost
    /// Places (addresses, accounts) whose failures are remembered at once.
    var placesRemembered = 4096
}

/// Account work for connections: checks and sets passwords (scrypt runs on NIO's thread pool, never under the
/// hub's lock or on the connection's task), talks to the store, and tells the hub the outcome.
struct AccountDesk: Sendable {
    let store: any AccountStore
    let hub: ChatHub<Fanout>
    var limits: AccountLimits
    /// Failed logins (and server passwords), per address and per account, over a minute.
    let attempts: AttemptCounter
    let registrationsByAddress: AttemptCounter
    let registrations = AttemptCounter(window: .seconds(60))
    let hashing = PasswordHashing()
    let logger: Logger

    init(store: any AccountStore, hub: ChatHub<Fanout>, limits: AccountLimits = .init(), logger: Logger) {
        self.store = store
        self.hub = hub
        self.limits = limits
        self.logger = logger
        self.attempts = AttemptCounter(window: .seconds(60), capacity: limits.placesRemembered)
        self.registrationsByAddress = AttemptCounter(window: limits.registrationWindow, capacity: limits.placesRemembered)
    }

    /// The account, if `password` is its password.
    ///
    /// Throttled so that guessers slow down and owners still get in: an address may fail five times a minute
    /// whatever it tries; an account that failed twenty times a minute is *under attack*, and then only
    /// addresses that have not failed yet may try, each after a second's wait — the owner, logging in from
    /// their usual address, does; an attacker's addresses, spent, do not. Names that are no account are not
    /// recorded, so junk names cannot fill the table.
    func verify(nick: String, password: String, from address: String) async throws(ChatError) -> Account {
        let place = "address \(addressKey(address))"
        if let wait = attempts.begin([(place, limits.failuresPerAddress)]) { throw tooMany(wait) }
        var counted = [place]
        let account = try? await store.account(named: nick)
        if let account {
            let target = "account \(account.key)"
            if attempts.attempts(target) >= limits.failuresPerAccount {
                guard attempts.attempts(place) == 1 else {
                    attempts.refund([place])  // not a try: it was not let near the password
                    throw tooMany(attempts.window)
                }
                try? await Task.sleep(for: limits.attackDelay)
            }
            _ = attempts.begin([(target, .max)])
            counted.append(target)
        }
        let matches: Bool
        if let account {
            matches = try await hashing.run { PasswordHasher.verify(password, against: account.credential) }
        } else {
            matches = false
        }
        guard let account, matches else {
            logger.notice("failed login", metadata: ["account": "\(nick)", "peer": "\(address)"])
            throw ChatError(.loginFailed, "Wrong nickname or password.")
        }
        attempts.refund(counted)
        return account
    }

    private func tooMany(_ wait: Duration) -> ChatError {
        ChatError(.tooManyAttempts, "Too many failed logins. Try again in \(Int(wait.components.seconds) + 1) seconds.")
    }

    func register(_ session: SessionID, password: String, from address: String) async throws(ChatError) {
        guard let nick = hub.nick(of: session) else { return }
        guard !hub.isRegistered(nick) else {
            throw ChatError(.nickRegistered, "\(nick) is registered already. Log in with /login \(nick) PASSWORD.")
        }
        // A few new accounts an address (its /64) every ten minutes, and a few dozen a minute in all: accounts
        // are stored for good and own rooms, and each costs a hash.
        if let wait = registrationsByAddress.begin([("register \(addressKey(address))", limits.registrationsPerAddress)])
            ?? registrations.begin([("register", limits.registrationsPerMinute)])
        {
            throw ChatError(.tooManyAttempts, "Too many new accounts from here. Try again in \(Int(wait.components.seconds) + 1) seconds.")
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
        return try await hashing.run { [cost = limits.passwordCost] in try PasswordHasher.credential(for: password, cost: cost) }
    }
}
