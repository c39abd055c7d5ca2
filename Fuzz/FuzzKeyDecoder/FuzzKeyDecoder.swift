import ParleyTerminal

/// The terminal client's (and the server console's) key decoding and line editing, on any bytes a terminal,
/// a paste or a stranger's escape sequence could bring, cut into reads by the first byte.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let control = bytes.first else { return 0 }
    let chunk = Int(control) + 1
    var decoder = KeyDecoder()
    var editor = LineEditor(historyLimit: 8)
    var input = bytes.dropFirst()
    while !input.isEmpty {
        let piece = input.prefix(chunk)
        input = input.dropFirst(piece.count)
        for key in decoder.decode(piece) {
            _ = editor.apply(key) { word in ["alice", "#general", "/help", word + "x"] }
            precondition(editor.cursor >= 0 && editor.cursor <= editor.text.count, "the cursor left the line")
        }
    }
    return 0
}
