import NIOCore
@testable import ParleyClient
import Synchronization
import Testing

@Suite("Connector")
struct ConnectorTests {
    @Test("the hello carries the account's password only with the nick it opens (any case), not with a nick taken since")
    func helloPassword() throws {
        let connector = Connector(address: try ServerAddress(parsing: "127.0.0.1:1"), trust: nil, nick: "ivan", password: "pw-1")
        #expect(String(buffer: connector.hello()).contains(#""password":"pw-1""#))
        connector.nick.withLock { $0 = "IVAN" }
        #expect(String(buffer: connector.hello()).contains(#""password":"pw-1""#))
        connector.nick.withLock { $0 = "other" }
        #expect(!String(buffer: connector.hello()).contains("password"))
    }

    @Test("the wait before a retry is counted down one second at a time")
    func countdown() {
        #expect(Connector.countdown(from: .seconds(3)) == [.seconds(3), .seconds(2), .seconds(1)])
        #expect(Connector.countdown(from: .milliseconds(2500)) == [.milliseconds(2500), .milliseconds(1500), .milliseconds(500)])
        #expect(Connector.countdown(from: .milliseconds(400)) == [.milliseconds(400)])
        #expect(Connector.countdown(from: .zero) == [.zero])
    }
}
