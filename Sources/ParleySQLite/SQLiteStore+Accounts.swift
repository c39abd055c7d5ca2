import Foundation
import NIOCore
import ParleyCore
import SQLiteNIO

extension SQLiteStore {
    public func accounts() async throws -> [Account] {
        try await connection.query("SELECT name, hash, salt, parameters, operator FROM accounts ORDER BY name_key")
            .compactMap(Self.account(from:))
    }

    public func account(named name: String) async throws -> Account? {
        try await connection.query(
            "SELECT name, hash, salt, parameters, operator FROM accounts WHERE name_key = ?", [.text(name.lowercased())]
        ).first.flatMap(Self.account(from:))
    }

    public func create(_ account: Account) async throws {
        guard try await self.account(named: account.name) == nil else { throw AccountError.exists(account.name) }
        _ = try await connection.query(
            "INSERT INTO accounts (name_key, name, hash, salt, parameters, operator, created_ms) VALUES (?,?,?,?,?,?,?)",
            [
                .text(account.key), .text(account.name), .blob(ByteBuffer(bytes: account.credential.hash)),
                .blob(ByteBuffer(bytes: account.credential.salt)), .text(account.credential.parameters),
                .integer(account.isOperator ? 1 : 0), .integer(Int(Date().timeIntervalSince1970 * 1000)),
            ]
        )
    }

    public func update(_ name: String, credential: Credential) async throws {
        guard try await account(named: name) != nil else { throw AccountError.missing(name) }
        _ = try await connection.query(
            "UPDATE accounts SET hash = ?, salt = ?, parameters = ? WHERE name_key = ?",
            [.blob(ByteBuffer(bytes: credential.hash)), .blob(ByteBuffer(bytes: credential.salt)), .text(credential.parameters), .text(name.lowercased())]
        )
    }

    public func setOperator(_ name: String, _ isOperator: Bool) async throws {
        guard try await account(named: name) != nil else { throw AccountError.missing(name) }
        _ = try await connection.query("UPDATE accounts SET operator = ? WHERE name_key = ?", [.integer(isOperator ? 1 : 0), .text(name.lowercased())])
    }

    public func delete(_ name: String) async throws -> Bool {
        guard try await account(named: name) != nil else { return false }
        // The private history kept for the account goes first: whoever registers the name next must not read
        // it (were the delete to fail after this, the account would only have lost its history).
        let key = SQLiteData.text(name.lowercased())
        _ = try await connection.query("UPDATE messages SET sender_account = NULL WHERE sender_account = ?", [key])
        _ = try await connection.query("UPDATE messages SET recipient_account = NULL WHERE recipient_account = ?", [key])
        _ = try await connection.query("DELETE FROM accounts WHERE name_key = ?", [key])
        return true
    }

    public func audit(actor: String, action: String, target: String, detail: String) async throws {
        _ = try await connection.query(
            "INSERT INTO audit (time_ms, actor, action, target, detail) VALUES (?,?,?,?,?)",
            [.integer(Int(Date().timeIntervalSince1970 * 1000)), .text(actor), .text(action), .text(target), .text(detail)]
        )
    }

    /// Moves on every change to the accounts, by this process or another (a trigger keeps it).
    func accountVersion() async throws -> Int {
        Int(try await connection.query("SELECT version FROM account_version").first?.column("version")?.integer ?? 0)
    }

    /// The audit trail, newest last (for the admin and for tests).
    public func auditTrail() async throws -> [AuditEntry] {
        try await connection.query("SELECT actor, action, target, detail FROM audit ORDER BY id").map {
            AuditEntry(
                actor: $0.column("actor")?.string ?? "", action: $0.column("action")?.string ?? "", target: $0.column("target")?.string ?? "",
                detail: $0.column("detail")?.string ?? ""
            )
        }
    }

    private static func account(from row: SQLiteRow) -> Account? {
        guard let name = row.column("name")?.string, case .blob(let hash)? = row.column("hash"),
            case .blob(let salt)? = row.column("salt"), let parameters = row.column("parameters")?.string
        else { return nil }
        return Account(
            name: name, credential: Credential(hash: Array(hash.readableBytesView), salt: Array(salt.readableBytesView), parameters: parameters),
            isOperator: row.column("operator")?.integer == 1
        )
    }
}
