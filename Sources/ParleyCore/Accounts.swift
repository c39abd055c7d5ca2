/// A registered nickname: who owns it (a password's verifier) and whether it is a server operator.
public struct Account: Sendable, Equatable {
    /// The nick as registered; accounts compare without regard to ASCII case, like nicks.
    public var name: String
    public var credential: Credential
    public var isOperator: Bool

    public init(name: String, credential: Credential, isOperator: Bool = false) {
        self.name = name
        self.credential = credential
        self.isOperator = isOperator
    }

    public var key: String { name.lowercased() }
}

/// A password verifier: the derived key, its salt, and the parameters that derived it, so they can change
/// for new passwords without breaking old ones.
public struct Credential: Sendable, Equatable {
    public var hash: [UInt8]
    public var salt: [UInt8]
    /// e.g. `scrypt:16384:8:1`.
    public var parameters: String

    public init(hash: [UInt8], salt: [UInt8], parameters: String) {
        self.hash = hash
        self.salt = salt
        self.parameters = parameters
    }
}

/// Where accounts live. Another process (the `parley account` command) may change them while the server
/// runs; `ChatStorage.changes()` says when, so the server can reload.
public protocol AccountStore: Sendable {
    func accounts() async throws -> [Account]
    func account(named name: String) async throws -> Account?
    /// Fails with `AccountError.exists` when the name is taken.
    func create(_ account: Account) async throws
    func update(_ name: String, credential: Credential) async throws
    func setOperator(_ name: String, _ isOperator: Bool) async throws
    /// Returns false when there was no such account.
    func delete(_ name: String) async throws -> Bool
    /// Records an administrative action (account and moderation changes).
    func audit(actor: String, action: String, target: String, detail: String) async throws
}

public enum AccountError: Error, Equatable, CustomStringConvertible {
    case exists(String)
    case missing(String)

    public var description: String {
        switch self {
        case .exists(let name): "an account named \(name) exists already"
        case .missing(let name): "there is no account named \(name)"
        }
    }
}
