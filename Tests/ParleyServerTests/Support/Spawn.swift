import Foundation
import NIOCore

/// A child process started with `posix_spawn`, where the tests used Foundation's `Process`.
///
/// Swift 6.3.1's `Process.run()` on Linux looks for the highest open descriptor by reading `/proc/self/fd`, and
/// copies each directory entry's whole 256-byte name field although glibc's entries are sized to the name: when
/// an entry sits at the end of glibc's buffer, before an unmapped page, the copy faults and the whole test
/// process dies (swift-corelibs-foundation#5472, fixed after 6.3.1). A full run of this suite, which starts
/// hundreds of processes, crashed that way about one time in five (`Process.run() + 6428`, in `memmove`).
///
/// What the child gets, as `Process` gave it: the three standard descriptors asked for and no other (glibc's
/// `closefrom` action, so a descriptor this process opened without close-on-exec never leaks into a tmux
/// server that outlives the test), default signal actions (the test process ignores some) and an empty signal
/// mask. It is reaped by `ChildExit`.
struct Spawned: Sendable {
    let pid: pid_t

    /// Starts `executable` (a path, or a name looked up in `PATH`) with `arguments`; `environment` replaces this
    /// process's when given. `input`, `output` and `error` are descriptors of this process, left open here (the
    /// caller closes its copies).
    static func start(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        input: CInt, output: CInt, error: CInt
    ) throws -> Spawned {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (descriptor, target) in [(input, CInt(0)), (output, 1), (error, 2)] {
            posix_spawn_file_actions_adddup2(&actions, descriptor, target)
        }
        guard let closeFrom = Self.closeFrom, closeFrom(&actions, 3) == 0 else { throw TestFailure("posix_spawn_file_actions_addclosefrom_np failed") }
        if let directory {
            guard let changeDirectory = Self.changeDirectory, changeDirectory(&actions, directory) == 0 else { throw TestFailure("cannot run in \(directory)") }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let pairs = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let envp = pairs.map { strdup($0) } + [nil]
        defer { for pair in envp { free(pair) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw TestFailure("cannot start \(executable): \(String(cString: strerror(result)))") }
        return Spawned(pid: pid)
    }

    /// The exit, reaped on a thread of its own. Once per child: the reaping is what tells it.
    func exit() -> EventLoopFuture<ChildExit> {
        ChildExit.of(pid: pid)
    }

    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    // glibc has both actions (2.34 and 2.29), but Swift's Glibc module leaves out its GNU extensions.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt
    private typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> CInt
    private static let closeFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: CloseFrom.self) }
    private static let changeDirectory = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: ChangeDirectory.self) }
}
