import Synchronization

/// Storage that keeps nothing on disk: accounts and the audit trail in memory, no history, no room policies.
/// For `parley serve --store none` (the baseline that measures what storage costs) and for tests.
public final class MemoryStorage: ChatStorage {
    private let state = Mutex<(accounts: [String: Account], audit: [AuditEntry])>(([:], []))

    public init() {}

    public var location: String { "memory" }

    // Nobody else can reach memory: nothing ever changes behind the server's back.
    public func changes() -> AsyncStream<StorageChange> { AsyncStream { $0.finish() } }
    public func close() async {}

    // MARK: Messages and rooms: kept nowhere.

    public func append(_ messages: [ChatMessage]) async throws {}
    public func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] { [] }
    public func lastMessageID() async throws -> Int64 { 0 }
    public func apply(_ changes: [RoomChange], audits: [AuditEntry]) async throws {
        state.withLock { $0.audit += audits }
    }
    public func roomPolicies() async throws -> [RoomPolicy] { [] }

    // MARK: Accounts

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

    public func audit(actor: String, action: String, target: String, detail: String) async throws {
        state.withLock { $0.audit.append(AuditEntry(actor: actor, action: action, target: target, detail: detail)) }
    }

    public func auditTrail() async throws -> [AuditEntry] { state.withLock { $0.audit } }
}
