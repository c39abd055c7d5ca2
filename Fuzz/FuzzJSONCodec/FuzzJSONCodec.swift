import NIOCore
import ParleyCore
import ParleyProtocols

/// The JSON-lines codec on any line a client can send (duplicate-key detection included), and the client's
/// own decoding of any event line a server could send.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let codec = JSONCodec()
    _ = codec.decode(ByteBuffer(bytes: bytes))
    _ = codec.decodeEvent(String(decoding: bytes, as: UTF8.self))
    return 0
}
