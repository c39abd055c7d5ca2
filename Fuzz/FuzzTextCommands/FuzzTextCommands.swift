import ParleyCore

/// What a plain-text user or the console operator types: the command tables, and the sanitiser every word
/// passes through before others see it. Sanitised text has no control character, no escape, nothing that
/// breaks or reorders a line, and sanitising twice changes nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let line = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    _ = try? TextCommands.request(forLine: line)
    _ = try? ConsoleCommands.action(forLine: line)
    _ = try? Nick(validating: line)
    _ = try? RoomName(validating: line)
    let clean = Sanitizer.text(line)
    precondition(Sanitizer.text(clean) == clean, "sanitising is not idempotent")
    for scalar in clean.unicodeScalars {
        precondition(scalar.value >= 0x20 && scalar.value != 0x7F && !(0x80..<0xA0).contains(scalar.value), "a control character")
        precondition(![0x2028, 0x2029, 0x202E, 0x2066].contains(scalar.value), "a line break or an override")
    }
    let name = Sanitizer.name(line)
    precondition(!name.unicodeScalars.contains { $0.properties.isBidiControl }, "a bidi control in a name")
    return 0
}
