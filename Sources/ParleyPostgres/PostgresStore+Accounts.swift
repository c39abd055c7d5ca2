import Foundation
import NIOCore
import ParleyCore
import PostgresNIO

extension PostgresStore {
    public func accounts() async throws -> [Account] {
        try await rows("SELECT name, hash, salt, parameters, operator FROM accounts ORDER BY name_key COLLATE \"C\"").map(Self.account(from:))
    }

    public func account(named name: String) async throws -> Account? {
        try await rows("SELECT name, hash, salt, parameters, operator FROM accounts WHERE name_key = \(name.lowercased())").first.map(Self.account(from:))
    }

    public func create(_ account: Account) async throws {
        // The key's uniqueness decides, in the database: two nodes registering one name at once cannot both win.
        let created = try await rows(
            """
            INSERT INTO accounts (name_key, name, hash, salt, parameters, operator, created_ms)
            VALUES (\(account.key), \(account.name), \(ByteBuffer(bytes: account.credential.hash)), \(ByteBuffer(bytes: account.credential.salt)),
                    \(account.credential.parameters), \(account.isOperator), \(Self.milliseconds(Date())))
            ON CONFLICT (name_key) DO NOTHING RETURNING name_key
            """
        )
        guard !created.isEmpty else { throw AccountError.exists(account.name) }
    }

    public func update(_ name: String, credential: Credential) async throws {
        let updated = try await rows(
            """
            UPDATE accounts SET hash = \(ByteBuffer(bytes: credential.hash)), salt = \(ByteBuffer(bytes: credential.salt)), parameters = \(credential.parameters)
            WHERE name_key = \(name.lowercased()) RETURNING name_key
            """
        )
        guard !updated.isEmpty else { throw AccountError.missing(name) }
    }

    public func setOperator(_ name: String, _ isOperator: Bool) async throws {
        let updated = try await rows("UPDATE accounts SET operator = \(isOperator) WHERE name_key = \(name.lowercased()) RETURNING name_key")
        guard !updated.isEmpty else { throw AccountError.missing(name) }
    }

    public func delete(_ name: String) async throws -> Bool {
        let key = name.lowercased()
        // The private history kept for the account is let go in the same transaction: whoever registers the name
        // next must not read it.
        return try await transaction { [logger] connection in
            try await connection.query("UPDATE messages SET sender_account = NULL WHERE sender_account = \(key)", logger: logger)
            try await connection.query("UPDATE messages SET recipient_account = NULL WHERE recipient_account = \(key)", logger: logger)
            return try await !connection.query("DELETE FROM accounts WHERE name_key = \(key) RETURNING name_key", logger: logger).collect().isEmpty
        }
    }

    public func audit(actor: String, action: String, target: String, detail: String) async throws {
        _ = try await rows(
            "INSERT INTO audit (time_ms, actor, action, target, detail) VALUES (\(Self.milliseconds(Date())), \(actor), \(action), \(target), \(detail))"
        )
    }

    public func auditTrail() async throws -> [AuditEntry] {
        try await rows("SELECT actor, action, target, detail FROM audit ORDER BY id").map { row in
            let (actor, action, target, detail) = try row.decode((String, String, String, String).self)
            return AuditEntry(actor: actor, action: action, target: target, detail: detail)
        }
    }

    private static func account(from row: PostgresRow) throws -> Account {
        let (name, hash, salt, parameters, isOperator) = try row.decode((String, ByteBuffer, ByteBuffer, String, Bool).self)
        return Account(
            name: name, credential: Credential(hash: Array(hash.readableBytesView), salt: Array(salt.readableBytesView), parameters: parameters),
            isOperator: isOperator
        )
    }
}
