import ArgumentParser
import Foundation
import Logging
import ParleyCore
import ParleyPostgres
import ParleyServer

/// `parley account …`: manage accounts in a data folder, whether or not a server is running on it (a running
/// server notices the change within a second).
struct AccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "Manage accounts (registered nicknames) and server operators.",
        discussion: "Works whether or not the server is running; a running server sees the change within a second.",
        subcommands: [Add.self, Remove.self, Passwd.self, List.self, Op.self, Deop.self]
    )

    struct Options: ParsableArguments {
        @Option(name: .customLong("data-dir"), help: "The server's data folder (--store sqlite).")
        var dataDirectory = "./parley-data"
        @Option(help: "Where the server keeps its data: sqlite (in --data-dir) or postgres (--database-url). Default: PARLEY_STORE, else sqlite.")
        var store: String?
        @Option(name: .customLong("database-url"), help: "The server's PostgreSQL database (postgres://USER:PASSWORD@HOST:PORT/DATABASE). Better set PARLEY_DATABASE_URL, which other users cannot see in ps.")
        var databaseURL: String?

        /// The storage these options name, the environment filling in what they leave out, as for `parley serve`.
        func storage() throws -> StorageChoice {
            let environment = ProcessInfo.processInfo.environment
            switch store ?? environment["PARLEY_STORE"] ?? "sqlite" {
            case "sqlite": return .sqlite(directory: dataDirectory)
            case "postgres":
                guard let url = databaseURL ?? environment["PARLEY_DATABASE_URL"] else {
                    throw ValidationError("--store postgres needs the database: set PARLEY_DATABASE_URL (or --database-url).")
                }
                do throws(DatabaseError) { return .postgres(try PostgresAddress(url)) } catch { throw ValidationError("\(error)") }
            case let other: throw ValidationError("--store \(other): accounts live in sqlite or postgres.")
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a nickname with a password.")
        @Argument(help: "The nickname.") var name: String
        @Option(help: "The password (read from standard input when left out).") var password: String?
        @Flag(help: "Make the account a server operator.") var op = false
        @OptionGroup var options: Options

        func run() async throws {
            let nick = try validNick(name)
            try await withStore(options, creating: true) { store in
                let credential = try PasswordHasher.credential(for: try readPassword(password))
                try await store.create(Account(name: nick, credential: credential, isOperator: op))
                try await store.audit(actor: "admin", action: "account add", target: nick, detail: op ? "operator" : "")
                print("added account \(nick)" + (op ? " (server operator)" : ""))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an account and the private history kept for it; its nickname is free again.")
        @Argument(help: "The nickname.") var name: String
        @OptionGroup var options: Options

        func run() async throws {
            try await withStore(options) { store in
                guard try await store.delete(name) else { throw AccountError.missing(name) }
                try await store.audit(actor: "admin", action: "account remove", target: name, detail: "")
                print("removed account \(name)")
            }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set an account's password.")
        @Argument(help: "The nickname.") var name: String
        @Option(help: "The new password (read from standard input when left out).") var password: String?
        @OptionGroup var options: Options

        func run() async throws {
            try await withStore(options) { store in
                try await store.update(name, credential: try PasswordHasher.credential(for: try readPassword(password)))
                try await store.audit(actor: "admin", action: "account passwd", target: name, detail: "")
                print("changed the password of \(name)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts.")
        @OptionGroup var options: Options

        func run() async throws {
            try await withStore(options) { store in
                for account in try await store.accounts() {
                    print(account.name + (account.isOperator ? "  (operator)" : ""))
                }
            }
        }
    }

    struct Op: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make an account a server operator.")
        @Argument(help: "The nickname.") var name: String
        @OptionGroup var options: Options

        func run() async throws { try await setOperator(name, true, options) }
    }

    struct Deop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make an account an ordinary one again.")
        @Argument(help: "The nickname.") var name: String
        @OptionGroup var options: Options

        func run() async throws { try await setOperator(name, false, options) }
    }
}

private func setOperator(_ name: String, _ isOperator: Bool, _ options: AccountCommand.Options) async throws {
    try await withStore(options) { store in
        try await store.setOperator(name, isOperator)
        try await store.audit(actor: "admin", action: isOperator ? "account op" : "account deop", target: name, detail: "")
        print(isOperator ? "\(name) is a server operator" : "\(name) is no longer a server operator")
    }
}

private func validNick(_ name: String) throws -> String {
    do throws(ChatError) {
        let nick = try Nick(validating: name)
        guard !ChatState<Int>.reservedNicks.contains(nick.key) else {
            throw ChatError(.nickReserved, "\(nick) is reserved for the server and its services.")
        }
        return nick.display
    } catch {
        throw ValidationError(error.message)
    }
}

/// The operator sets passwords here and may choose a short one (a test account, a kiosk): it is warned, not
/// refused. Users who register or change their own are held to the minimum.
private func readPassword(_ given: String?) throws -> String {
    let password = given ?? readLine(strippingNewline: true) ?? ""
    guard !password.isEmpty else { throw ValidationError("The password is empty.") }
    if password.count < PasswordHasher.minimumLength {
        FileHandle.standardError.write(
            Data("warning: a password of \(password.count) characters is easy to guess; users must choose at least \(PasswordHasher.minimumLength).\n".utf8)
        )
    }
    return password
}

/// Opens the data folder's database, runs `body`, and turns store and account errors into clear messages. Only
/// `creating` commands (`add`) make a database where there is none.
private func withStore(_ options: AccountCommand.Options, creating: Bool = false, _ body: (any ChatStorage) async throws -> Void) async throws {
    let choice = try options.storage()
    let store: any ChatStorage
    do {
        store = try await choice.open(serving: false, creating: creating, logger: Logger(label: "parley.account"))
    } catch {
        FileHandle.standardError.write(Data("parley: \(error)\n".utf8))
        throw ExitCode(3)
    }
    do {
        try await body(store)
        await store.close()
    } catch let error as AccountError {
        await store.close()
        FileHandle.standardError.write(Data("parley: \(error)\n".utf8))
        throw ExitCode(1)
    } catch {
        await store.close()
        throw error
    }
}
