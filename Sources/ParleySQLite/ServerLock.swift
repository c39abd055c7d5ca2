import Foundation

/// The data folder's owner: an exclusive `flock` on `parley.pid` in it, held by `parley serve` for as long as it
/// runs (and by `parley restore` while it swaps the database), with the holder's process id written inside.
/// A second server on the same folder is refused at start, naming the process that has it, instead of failing
/// later on a locked database; `parley account …` and `parley backup` take no part and work beside a server.
/// The lock dies with its process, so a crash never leaves it behind (the file may stay; it is not the lock).
public final class ServerLock: Sendable {
    public static let fileName = "parley.pid"

    private let descriptor: Int32

    /// Takes the lock or throws `ServerLockError.held`, naming the process that holds it.
    public static func acquire(directory: String) throws -> ServerLock {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ServerLockError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(descriptor)
            // A file system without locks (some network ones): go on without; SQLite's own locks remain.
            if reason == ENOLCK || reason == EOPNOTSUPP { return try acquireWithoutLocking(path: path) }
            throw ServerLockError.held(directory: directory, process: holder.flatMap(Int32.init))
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
        return ServerLock(descriptor: descriptor)
    }

    private static func acquireWithoutLocking(path: String) throws -> ServerLock {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ServerLockError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        return ServerLock(descriptor: descriptor)
    }

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Lets the folder go. Unlocked before it is closed: a child being spawned at that moment (between its fork and
    /// its exec, close-on-exec or not) holds a copy of the descriptor, and with it the lock, until it execs; an
    /// explicit unlock releases the lock itself. Seen in the tests, which spawn processes beside servers that stop
    /// and restart on the same folder.
    public func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

public enum ServerLockError: Error, CustomStringConvertible, Equatable {
    case held(directory: String, process: Int32?)
    case cannotOpen(path: String, reason: String)

    public var description: String {
        switch self {
        case .held(let directory, let process):
            "another parley (\(process.map { "process \($0)" } ?? "another process")) is using the data folder \(directory): "
                + "a server, or a restore; stop it first, or give this one another --data-dir"
        case .cannotOpen(let path, let reason): "cannot open \(path): \(reason)"
        }
    }
}
