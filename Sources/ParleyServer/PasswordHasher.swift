import Crypto
import CryptoExtras
import Foundation
import NIOCore
import NIOPosix
import ParleyCore
import Synchronization

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

/// Password hashing: scrypt is deliberately slow (tens of milliseconds and 16 MiB each), so it has threads of
/// its own — on NIO's shared pool it would hold up the storage during a burst of logins — and a bound on what may
/// wait for them: past it a login or registration is refused at once ("busy"), so a flood of them cannot make
/// every real user wait seconds.
final class PasswordHashing: Sendable {
    let pool: NIOThreadPool
    /// Hashes running or waiting, at most.
    let limit: Int
    private let pending = Atomic<Int>(0)
    /// Who waits for the count to reach a value (`waitUntil(waiting:)`), by id.
    private let watchers = Mutex<(next: Int, waiting: [Int: (count: Int, continuation: CheckedContinuation<Void, Never>)])>((0, [:]))

    /// Checks running or waiting now.
    var waiting: Int { pending.load(ordering: .relaxed) }

    /// Returns once `count` checks are running or waiting (at once if they are), or when cancelled. No client can
    /// see a check start, so this is how a test knows one has (the count changes twice a check, tens of
    /// milliseconds apart: watching it costs nothing).
    func waitUntil(waiting count: Int) async {
        let id = watchers.withLock { state -> Int? in
            guard pending.load(ordering: .relaxed) != count else { return nil }
            defer { state.next += 1 }
            return state.next
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = watchers.withLock { state -> Bool in
                    guard pending.load(ordering: .relaxed) != count, !Task.isCancelled else { return true }
                    state.waiting[id] = (count, continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            watchers.withLock { $0.waiting.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// After the count changed (under the watchers' lock, so a watcher either saw the new count or is told).
    private func countChanged() {
        let ready = watchers.withLock { state in
            let now = pending.load(ordering: .relaxed)
            let reached = state.waiting.filter { $0.value.count == now }
            for id in reached.keys { state.waiting[id] = nil }
            return reached.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

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
        countChanged()
        defer {
            pending.wrappingSubtract(1, ordering: .relaxed)
            countChanged()
        }
        do {
            return try await pool.runIfActive(work)
        } catch let error as ChatError {
            throw error
        } catch {
            throw ChatError(.busy, "The password could not be checked just now; try again in a moment.")
        }
    }
}
