import Crypto
import CryptoExtras
import Foundation
import ParleyCore

/// scrypt password verifiers (RFC 7914), with a random 16-byte salt per account and the parameters stored
/// beside the hash. N = 2^14, r = 8, p = 1 costs about 16 MiB and tens of milliseconds per guess: slow for
/// an attacker with a stolen database, fast enough for a login.
public enum PasswordHasher {
    public static let minimumLength = 6

    /// scrypt's N: the work and memory of one check (16 MiB at 2^14).
    public static let defaultCost = 16_384

    /// A new verifier for `password`. `cost` (scrypt's N, a power of two) is stored with it, so a server that
    /// changes it still checks older passwords; tests use a lower one to spare the machine.
    public static func credential(for password: String, cost: Int = defaultCost) throws -> Credential {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = generator.next() }
        let (n, r, p) = (cost, 8, 1)
        return Credential(hash: try derive(password, salt: salt, n: n, r: r, p: p), salt: salt, parameters: "scrypt:\(n):\(r):\(p)")
    }

    /// True when `password` matches; compared in constant time.
    public static func verify(_ password: String, against credential: Credential) -> Bool {
        let parts = credential.parameters.split(separator: ":")
        guard parts.count == 4, parts[0] == "scrypt", let n = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
            let derived = try? derive(password, salt: credential.salt, n: n, r: r, p: p)
        else { return false }
        return SymmetricKey(data: derived) == SymmetricKey(data: credential.hash)
    }

    private static func derive(_ password: String, salt: [UInt8], n: Int, r: Int, p: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: n, blockSize: r, parallelism: p)
        return key.withUnsafeBytes { Array($0) }
    }
}
