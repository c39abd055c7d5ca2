import Foundation

/// An exclusive `flock` on the data folder, held by a process while it opens the database and brings its
/// schema up to date, so that two Parley processes started at once (`parley serve` and `parley account add`)
/// never set up the same new file together.
///
/// SQLite's own locking cannot cover that moment: a brand-new file is not in WAL mode yet, and switching it
/// (and upgrading a read lock to a write lock) can fail with "database is locked" without waiting for the busy
/// timeout; and a process that read the schema version before the other committed its migrations would run
/// them again. `flock` belongs to the open file description, so it also separates two opens in one process,
/// and it goes away with the process, so a crash never leaves it behind. Nothing is created: the lock is on
/// the folder itself.
struct SetupLock {
    private let descriptor: Int32

    /// Waits (polling, without blocking a thread) until the lock is free, for at most `timeout`.
    static func acquire(on directory: String, timeout: Duration = .seconds(30)) async throws -> SetupLock {
        let descriptor = open(directory, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StoreError.cannotOpen(path: directory, reason: String(cString: strerror(errno)))
        }
        let deadline = ContinuousClock.now + timeout
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            // A file system without locks (some network ones): go on without; SQLite's own locks remain.
            if errno == ENOLCK || errno == EOPNOTSUPP { break }
            guard errno == EWOULDBLOCK || errno == EINTR else {
                close(descriptor)
                throw StoreError.cannotOpen(path: directory, reason: String(cString: strerror(errno)))
            }
            guard ContinuousClock.now < deadline else {
                close(descriptor)
                throw StoreError.settingUp(path: directory)
            }
            do {
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                close(descriptor)
                throw error
            }
        }
        return SetupLock(descriptor: descriptor)
    }

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Closing the descriptor (the only one: it is not inherited by child processes) releases the lock.
    func release() {
        close(descriptor)
    }
}
