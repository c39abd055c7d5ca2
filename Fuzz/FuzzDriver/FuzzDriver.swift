import Foundation

/// libFuzzer's driver, called from the target's own `main` (SwiftPM names an executable's entry point itself,
/// so libFuzzer's `main` cannot be it).
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var target: ((UnsafeRawPointer, Int) -> CInt)?

/// Runs libFuzzer on `body`, with the command line's options (a corpus folder, -runs=, -max_total_time=…).
public func runFuzzer(_ body: @escaping (UnsafeRawPointer, Int) -> CInt) -> Never {
    target = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        // An empty input comes with no pointer.
        guard let data else { return withUnsafeBytes(of: 0) { target!($0.baseAddress!, 0) } }
        return target!(data, size)
    })
}
