import Synchronization

/// Accounts in memory: for a server run without a database (tests, the storage-off benchmark baseline).
public final class MemoryAccountStore: AccountStore {
    private let state = Mutex<(accounts: [String: Account], version: Int)>(([:], 0))

    public init() {}

    public func accounts() async throws -> [Account] { state.withLock { $0.accounts.values.sorted { $0.key < $1.key } } }
    public func account(named name: String) async throws -> Account? { state.withLock { $0.accounts[name.lowercased()] } }

    public func create(_ account: Account) async throws {
        try state.withLock { state in
            guard state.accounts[account.key] == nil else { throw AccountError.exists(account.name) }
            state.accounts[account.key] = account
        }
    }

    public func update(_ name: String, credential: Credential) async throws {
        try state.withLock { state in
            guard state.accounts[name.lowercased()] != nil else { throw AccountError.missing(name) }
            state.accounts[name.lowercased()]!.credential = credential
        }
    }

    public func setOperator(_ name: String, _ isOperator: Bool) async throws {
        try state.withLock { state in
            guard state.accounts[name.lowercased()] != nil else { throw AccountError.missing(name) }
            state.accounts[name.lowercased()]!.isOperator = isOperator
        }
    }

    public func delete(_ name: String) async throws -> Bool {
        state.withLock { $0.accounts.removeValue(forKey: name.lowercased()) != nil }
    }

    public func audit(actor: String, action: String, target: String, detail: String) async throws {}
    public func changeCounter() async throws -> Int { state.withLock { $0.version } }
}
