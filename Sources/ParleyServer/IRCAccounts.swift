import Foundation
import ParleyCore
import ParleyProtocols

/// Accounts on the IRC door, in IRC's own terms: SASL PLAIN (before or after registration), IRCv3
/// `draft/account-registration`'s REGISTER, and a NickServ that answers what every network's does — so an
/// IRC user registers, logs in and changes a password without leaving their client. All of it runs on the
/// same `AccountDesk` as `/register`, `/login` and `/passwd` on the other doors.
extension IRCSession {
    /// Where a SASL PLAIN exchange is: between `AUTHENTICATE PLAIN` and the last chunk of its payload (base64
    /// of `authzid NUL authcid NUL password`, sent 400 bytes at a time).
    enum SASLExchange {
        case idle
        case plain(received: String)
    }

    /// The most base64 a PLAIN payload may take in all: a 300-byte name and password, with room to spare.
    static let maximumSASLPayload = 2048

    private var currentAccount: String? {
        switch registration {
        case .connecting(let pending): pending.account?.key
        case .registered(let id): context.hub.account(of: id)
        }
    }

    private var passwordAccepted: Bool {
        if case .connecting(let pending) = registration { return pending.passwordAccepted }
        return true
    }

    mutating func authenticate(_ message: IRCMessage) async -> Flow {
        guard peer.capabilities.contains(.sasl) else {
            send(codec.numeric("904", me, "SASL authentication failed: request the sasl capability first"))
            return .proceed
        }
        let argument = message.params[0]
        guard !argument.isEmpty else { return needMoreParams(message) }
        // The server password comes first: nobody who lacks it may try account passwords.
        guard passwordAccepted else {
            send(codec.numeric("904", me, "SASL authentication failed: send the server password (PASS) first"))
            return .proceed
        }
        if argument == "*" {
            sasl = .idle
            send(codec.numeric("906", me, "SASL authentication aborted"))
            return .proceed
        }
        switch sasl {
        case .idle:
            // Logged in already, a client may log in again, to the same account or another (SASL 3.2: "at any
            // time"); the session then belongs to the new one.
            guard argument.uppercased() == "PLAIN" else {
                send(codec.numeric("908", me, "PLAIN", "are available SASL mechanisms"))
                send(codec.numeric("904", me, "SASL authentication failed"))
                return .proceed
            }
            // Refused before the client sends its password, not after.
            if let refusal = context.security.passwordRefusal {
                send(codec.numeric("904", me, "SASL authentication failed: \(refusal.message)"))
                return .proceed
            }
            sasl = .plain(received: "")
            send(IRCMessage(command: "AUTHENTICATE", params: ["+"]))
        case .plain(let received):
            guard argument.utf8.count <= 400 else {
                sasl = .idle
                send(codec.numeric("905", me, "SASL message too long"))
                return .proceed
            }
            let payload = received + (argument == "+" ? "" : argument)
            // A payload that never ends is a failed attempt, not memory to keep.
            guard payload.utf8.count <= Self.maximumSASLPayload else {
                sasl = .idle
                send(codec.numeric("904", me, "SASL authentication failed: the payload is longer than \(Self.maximumSASLPayload) bytes"))
                return .proceed
            }
            // A chunk of exactly 400 bytes means more follows.
            if argument.utf8.count == 400 {
                sasl = .plain(received: payload)
                return .proceed
            }
            sasl = .idle
            await logIn(plain: payload)
        }
        return .proceed
    }

    private mutating func logIn(plain payload: String) async {
        let parts = Data(base64Encoded: payload).map { $0.split(separator: 0, omittingEmptySubsequences: false) } ?? []
        guard parts.count == 3 else {
            send(codec.numeric("904", me, "SASL authentication failed: the PLAIN payload is malformed"))
            return
        }
        let (identity, name, password) = (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self), String(decoding: parts[2], as: UTF8.self))
        guard identity.isEmpty || asciiLowercased(identity) == asciiLowercased(name) else {
            send(codec.numeric("904", me, "SASL authentication failed: you can only log in as yourself"))
            return
        }
        do throws(ChatError) {
            let verified = try await context.accounts.verify(nick: name, password: password, from: context.address)
            // The replies first, under the nick the client has now: logging in may rename it.
            let nick: String =
                switch registration {
                case .connecting(let pending): pending.nick ?? "*"
                case .registered: me
                }
            send(codec.numeric("900", nick, IRCCodec.source(nick), verified.name, "You are now logged in as \(verified.name)"))
            send(codec.numeric("903", nick, "SASL authentication successful"))
            await flushReplies()
            switch registration {
            case .connecting(var pending):
                pending.account = verified
                registration = .connecting(pending)
            case .registered(let id):
                context.hub.authenticate(id, as: verified, takingNick: false)
            }
        } catch {
            send(codec.numeric("904", me, "SASL authentication failed: \(error.message)"))
        }
    }

    // MARK: - REGISTER (draft/account-registration)

    /// `REGISTER <account> <email|*> <password>`: registers the nick in use (the account name must be it, or
    /// `*`), and logs the session in. No e-mail is asked or kept; no verification step.
    mutating func register(_ message: IRCMessage) async -> Flow {
        let (account, password) = (message.params[0], message.params[2])
        let fail = { (session: IRCSession, code: String, text: String) in
            session.send(IRCMessage(source: session.codec.serverName, command: "FAIL", params: ["REGISTER", code, account, text]))
        }
        guard let session else {
            fail(self, "COMPLETE_CONNECTION_REQUIRED", "Register once connected (after NICK and USER)")
            return .proceed
        }
        guard account == "*" || asciiLowercased(account) == asciiLowercased(me) else {
            fail(self, "ACCOUNT_NAME_MUST_BE_NICK", "The account is the nick you use: change to it first (/nick \(account))")
            return .proceed
        }
        guard currentAccount == nil else {
            fail(self, "ALREADY_AUTHENTICATED", "You are logged in already")
            return .proceed
        }
        do throws(ChatError) {
            try context.checkPasswordsAccepted()
            // What this line said so far goes first: registering acts on the hub directly.
            await flushReplies()
            try await context.accounts.register(session, password: password, from: context.address, howToLogIn: Self.howToLogIn)
            let name = context.hub.accountName(of: session) ?? me
            send(codec.numeric("900", me, IRCCodec.source(me), name, "You are now logged in as \(name)"))
            send(IRCMessage(source: codec.serverName, command: "REGISTER", params: ["SUCCESS", name, "Account created"]))
        } catch {
            let code =
                switch error.code {
                case .nickRegistered: "ACCOUNT_EXISTS"
                case .usage: "WEAK_PASSWORD"
                case .tooManyAttempts, .busy: "TEMPORARILY_UNAVAILABLE"
                default: "UNACCEPTABLE_PASSWORD"
                }
            fail(self, code, error.message)
        }
        return .proceed
    }

    // MARK: - NickServ

    static let howToLogIn = "/msg NickServ IDENTIFY NICK PASSWORD (or SASL)"

    static let nickServHelp = [
        "NickServ keeps nicknames for their owners. Commands:",
        "REGISTER <password>            register the nick you use now",
        "IDENTIFY [nick] <password>     log in (your client can do it for you with SASL)",
        "SET PASSWORD <current> <new>   change your password (also: PASSWD <current> <new>)",
        "INFO [nick]                    whether a nick is registered, and who uses it",
        "HELP                           this list",
    ]

    /// `/msg NickServ …` (or `/nickserv …`, `/ns …`): answered with notices from NickServ, in order with
    /// everything else.
    mutating func nickServ(_ line: String) async {
        let words = line.split(separator: " ").map(String.init)
        guard let session, let command = words.first?.uppercased() else {
            nickServSays(Self.nickServHelp)
            return
        }
        let arguments = Array(words.dropFirst())
        do throws(ChatError) {
            switch (command, arguments.count) {
            case ("REGISTER", 1...):
                try context.checkPasswordsAccepted()
                await flushReplies()
                try await context.accounts.register(session, password: arguments[0], from: context.address, howToLogIn: Self.howToLogIn)
                let name = context.hub.accountName(of: session) ?? me
                send(codec.numeric("900", me, IRCCodec.source(me), name, "You are now logged in as \(name)"))
            case ("IDENTIFY", 1...2):
                try context.checkPasswordsAccepted()
                let nick = arguments.count == 2 ? arguments[0] : me
                let account = try await context.accounts.verify(nick: nick, password: arguments.last!, from: context.address)
                // The replies first, under the nick the client has now: logging in may rename it.
                send(codec.numeric("900", me, IRCCodec.source(me), account.name, "You are now logged in as \(account.name)"))
                nickServSays(["You are now identified for \(account.name)."])
                await flushReplies()
                context.hub.authenticate(session, as: account, takingNick: false)
            case ("SET", 3) where arguments[0].uppercased() == "PASSWORD", ("PASSWD", 2):
                try context.checkPasswordsAccepted()
                let (old, new) = (arguments[arguments.count - 2], arguments[arguments.count - 1])
                await flushReplies()
                try await context.accounts.changePassword(session, old: old, new: new, from: context.address)
            case ("INFO", 0...1):
                let nick = arguments.first ?? me
                let profile = context.hub.profile(of: nick)
                var lines = [context.hub.isRegistered(nick) ? "\(nick) is registered." : "\(nick) is not registered."]
                if let profile { lines.append("\(profile.nick) is online" + (profile.account.map { ", logged in as \($0)." } ?? ", not logged in.")) }
                nickServSays(lines)
            case ("HELP", _):
                nickServSays(Self.nickServHelp)
            case ("SET", _), ("PASSWD", _):
                // Never the arguments back: they hold passwords, and clients log notices.
                nickServSays(["To change your password: SET PASSWORD <current> <new>."])
            default:
                // Only the command word is quoted back: arguments may hold passwords.
                nickServSays(["Unknown command or wrong arguments for \(command.prefix(20)). /msg NickServ HELP lists the commands."])
            }
        } catch {
            nickServSays([Self.inIRCTerms(error)])
        }
    }

    private func nickServSays(_ lines: [String]) {
        for line in lines { send(IRCMessage(source: "NickServ!NickServ@services", command: "NOTICE", params: [me, line])) }
    }

    /// The desk's refusals name text commands (/login): for IRC users, say it with NickServ.
    static func inIRCTerms(_ error: ChatError) -> String {
        switch error.code {
        case .notLoggedIn: "You are not logged in: /msg NickServ IDENTIFY PASSWORD first."
        case .nickRegistered: "That nick is registered already. Log in with \(howToLogIn)."
        default: error.message
        }
    }
}
