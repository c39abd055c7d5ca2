import NIOCore
import ParleyCore
import ParleyProtocols

/// The JSON-lines codec on any line a client can send (duplicate-key detection included), and the client's
/// own decoding of any event line a server could send. Whatever the server accepts, the client's encoder
/// writes back as a line the server reads as the same message: the two halves of the protocol agree.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let codec = JSONCodec()
    _ = codec.decodeEvent(String(decoding: bytes, as: UTF8.self))
    let (decoded, ref) = codec.decode(ByteBuffer(bytes: bytes))
    guard case .success(let message) = decoded else { return 0 }
    let line: ByteBuffer?
    switch message {
    case .hello(_, let nick, let password, let resume, let serverPassword, let joinGeneral):
        line = codec.encodeHello(nick: nick, password: password, resume: resume, serverPassword: serverPassword, joinGeneral: joinGeneral, ref: ref)
    case .request(let request):
        line = codec.encode(request, ref: ref)
    }
    guard let line else { return 0 }
    let (again, refAgain) = codec.decode(line)
    precondition(refAgain == ref, "the ref changed: \(String(describing: ref)) → \(String(describing: refAgain))")
    guard case .success(let messageAgain) = again else {
        preconditionFailure("the client's line for \(message) is refused: \(again)")
    }
    if case .hello(_, let nick, let password, let resume, let serverPassword, let joinGeneral) = message,
       case .hello(_, let nickAgain, let passwordAgain, let resumeAgain, let serverPasswordAgain, let joinGeneralAgain) = messageAgain {
        // The version is the client's own; the rest must survive.
        precondition(
            nick == nickAgain && password == passwordAgain && resume == resumeAgain && serverPassword == serverPasswordAgain
                && joinGeneral == joinGeneralAgain
        )
    } else {
        precondition(message == messageAgain, "\(message) came back as \(messageAgain)")
    }
    return 0
}
