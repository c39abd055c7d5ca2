import Foundation
import Logging
import NIOCore
import NIOPosix
import ParleyCore
import Synchronization

/// How many tries: failed logins a minute per address (an IPv6 /64), per network (an IPv6 /48) and against one
/// account, and new accounts per address and network every ten minutes.
struct AccountLimits: Sendable {
    var failuresPerAddress = 5
    /// Failures of an IPv6 /48 in all: a spread of addresses from one site is held back too.
    var failuresPerNetwork = 20
    var failuresPerAccount = 20
    /// While an account is under attack: how many addresses it does not know may try it a minute, and how
    /// long each waits first.
    var strangersPerAccount = 5
    var attackDelay: Duration = .seconds(1)
    var registrationsPerAddress = 3
    var registrationsPerNetwork = 10
    var registrationWindow: Duration = .seconds(600)
    /// scrypt's N for new passwords (see `PasswordHasher`).
    var passwordCost = PasswordHasher.defaultCost
    /// Places (addresses, accounts) whose failures are remembered at once.
    var placesRemembered = 4096
}

/// Account work for connections: checks and sets passwords (scrypt runs on `PasswordHashing`'s threads, never
/// under the hub's lock or on the connection's task), talks to the store, and tells the hub the outcome.
struct AccountDesk: Sendable {
    let store: any AccountStore
    let hub: ChatHub<Fanout>
    var limits: AccountLimits
    /// Failed logins (and server passwords), per address, network and account, over a minute.
    let attempts: AttemptCounter
    /// New accounts per address and network, over `registrationWindow`.
    let registrations: AttemptCounter
    /// Per account, the addresses it logged in from lately: its owner's, let in during an attack.
    let known = KnownAddresses()
    let hashing: PasswordHashing
    /// Counts failed logins.
    let metrics: ServerMetrics
    let logger: Logger
    /// Failed logins, rate-limited: a guesser from many addresses cannot fill the disk.
    let operatorLog: OperatorLog

    init(
        store: any AccountStore, hub: ChatHub<Fanout>, limits: AccountLimits = .init(), hashing: PasswordHashing = PasswordHashing(),
        metrics: ServerMetrics = ServerMetrics(), logger: Logger, operatorLog: OperatorLog = OperatorLog()
    ) {
        self.operatorLog = operatorLog
        self.store = store
        self.hub = hub
        self.limits = limits
        self.hashing = hashing
        self.metrics = metrics
        self.logger = logger
        self.attempts = AttemptCounter(window: .seconds(60), capacity: limits.placesRemembered)
        self.registrations = AttemptCounter(window: limits.registrationWindow, capacity: limits.placesRemembered)
    }

    /// The account, if `password` is its password.
    ///
    /// Throttled so that guessers slow down and owners still get in:
    /// - an address may fail five times a minute whatever it tries (an IPv6 /64 is one address, and a /48 may
    ///   fail twenty times: a spread of addresses does not escape);
    /// - an account that failed twenty times in a minute is *under attack*: then an address it was logged in
    ///   from before (its owner's) still goes, while any other must not have failed yet, waits a second, and
    ///   only five such a minute get to try. Spent addresses, and a crowd of fresh ones, are held back.
    /// Names that are no account are not recorded, so junk names cannot fill the table.
    func verify(nick: String, password: String, from address: String) async throws(ChatError) -> Account {
        let place = "address \(addressKey(address))"
        var places = [(key: place, limit: limits.failuresPerAddress)]
        if let network = networkKey(address) { places.append(("network \(network)", limits.failuresPerNetwork)) }
        if let wait = attempts.begin(places) { throw tooMany(wait) }
        var counted = places.map(\.key)
        let account = try? await store.account(named: nick)
        if let account {
            let target = "account \(account.key)"
            if attempts.attempts(target) >= limits.failuresPerAccount, !isKnown(addressKey(address), for: account.key) {
                let stranger = ("strangers \(account.key)", limits.strangersPerAccount)
                guard attempts.attempts(place) == 1, attempts.begin([stranger]) == nil else {
                    attempts.refund(counted)  // not a try: it was not let near the password
                    throw tooMany(attempts.window)
                }
                try? await Task.sleep(for: limits.attackDelay)
            }
            // The account's limit marks it as held back, which keeps it in the table; it never refuses by itself.
            attempts.record([(target, limits.failuresPerAccount)])
            counted.append(target)
        }
        let matches: Bool
        if let account {
            matches = try await hashing.run { PasswordHasher.verify(password, against: account.credential) }
        } else {
            matches = false
        }
        guard let account, matches else {
            operatorLog.log(.failedLogin, .notice, "failed login", metadata: ["account": "\(nick)", "peer": "\(address)"], to: logger)
            metrics.loginFailed()
            throw ChatError(.loginFailed, "Wrong nickname or password.")
        }
        attempts.refund(counted)
        remember(addressKey(address), for: account.key)
        return account
    }

    private func isKnown(_ place: String, for account: String) -> Bool { known.contains(place, for: account) }
    private func remember(_ place: String, for account: String) { known.remember(place, for: account) }

    private func tooMany(_ wait: Duration) -> ChatError {
        ChatError(.tooManyAttempts, "Too many failed logins. Try again in \(Int(wait.components.seconds) + 1) seconds.")
    }

    /// Registers the session's nick; `howToLogIn` says how this door logs in (NICK stands for the nick).
    func register(
        _ session: SessionID, password: String, from address: String, howToLogIn: String = "/login NICK PASSWORD"
    ) async throws(ChatError) {
        guard let nick = hub.nick(of: session) else { return }
        let howToLogIn = howToLogIn.replacingOccurrences(of: "NICK", with: nick)
        guard !hub.isRegistered(nick) else {
            throw ChatError(.nickRegistered, "\(nick) is registered already. Log in with \(howToLogIn).")
        }
        try checkLength(password)
        // A few new accounts an address (its /64) every ten minutes, a few more a network (an IPv6 /48):
        // accounts are stored for good and own rooms. A registration that fails does not count.
        var places = [(key: "register \(addressKey(address))", limit: limits.registrationsPerAddress)]
        if let network = networkKey(address) { places.append(("register \(network)", limits.registrationsPerNetwork)) }
        if let wait = registrations.begin(places) {
            throw ChatError(.tooManyAttempts, "Too many new accounts from here. Try again in \(Int(wait.components.seconds) + 1) seconds.")
        }
        do throws(ChatError) {
            let account = Account(name: nick, credential: try await credential(for: password))
            do {
                try await store.create(account)
                try? await store.audit(actor: nick, action: "register", target: nick, detail: "")
            } catch AccountError.exists {
                throw ChatError(.nickRegistered, "\(nick) is registered already. Log in with \(howToLogIn).")
            } catch {
                throw ChatError(.notStored, "The account could not be stored; try again later.")
            }
            remember(addressKey(address), for: account.key)
            hub.authenticate(session, as: account)
            hub.tell(session, .notice("The nickname \(nick) is now registered to you. Next time, log in with \(howToLogIn)."))
        } catch {
            registrations.refund(places.map(\.key))
            throw error
        }
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

    private func checkLength(_ password: String) throws(ChatError) {
        guard password.count >= PasswordHasher.minimumLength else {
            throw ChatError(.usage, "A password has at least \(PasswordHasher.minimumLength) characters.")
        }
    }

    private func credential(for password: String) async throws(ChatError) -> Credential {
        try checkLength(password)
        return try await hashing.run { [cost = limits.passwordCost] in try PasswordHasher.credential(for: password, cost: cost) }
    }
}

/// Per account, the last few addresses (`addressKey`) it logged in from, in memory: accounts are few and
/// bounded by the registration limits, and eight addresses each are enough to know an owner.
final class KnownAddresses: Sendable {
    private let places = Mutex<[String: [String]]>([:])

    func contains(_ place: String, for account: String) -> Bool {
        places.withLock { $0[account]?.contains(place) == true }
    }

    func remember(_ place: String, for account: String) {
        places.withLock { places in
            var known = places[account, default: []].filter { $0 != place }
            known.append(place)
            places[account] = Array(known.suffix(8))
        }
    }
}
