import Crypto
import Foundation
import Logging
import NIOCore
import NIOSSL
import ParleyTLS
import ServiceLifecycle
import SwiftASN1
import Synchronization
import UnixSignals
import X509

/// Where the TLS doors' certificate comes from.
public enum CertificateSource: Sendable, Equatable {
    /// A self-signed certificate for the server name, made on first start and kept in the data folder.
    case generated
    /// PEM files given by the operator: the certificate (its chain may follow it) and its private key.
    case files(certificate: String, key: String)
}

/// The certificate every TLS door presents, and the TLS context built from it. New connections take the
/// current context; `reload()` (SIGHUP) reads the files again, so a renewed certificate is served without a
/// restart and without touching open connections. A reload that fails keeps the old certificate.
public final class TLSProvider: Sendable {
    struct Loaded: Sendable {
        let context: NIOSSLContext
        let fingerprint: String
        let subject: String
        let notAfter: Date?
        /// Its own issuer: no client trusts it without being told to.
        let selfIssued: Bool
    }

    let source: CertificateSource
    /// The files read: the operator's, or the generated pair in the data folder.
    let certificatePath: String
    let keyPath: String
    private let loaded: Mutex<Loaded>

    /// Loads the certificate, making the self-signed one first when `source` asks for it and there is none.
    public init(source: CertificateSource, dataDirectory: String, serverName: String) throws {
        self.source = source
        switch source {
        case .files(let certificate, let key):
            (certificatePath, keyPath) = (certificate, key)
        case .generated:
            let directory = URL(fileURLWithPath: dataDirectory).appendingPathComponent("tls")
            (certificatePath, keyPath) = (directory.appendingPathComponent("certificate.pem").path, directory.appendingPathComponent("key.pem").path)
            if !FileManager.default.fileExists(atPath: certificatePath) || !FileManager.default.fileExists(atPath: keyPath) {
                try SelfSignedCertificate.make(for: serverName, certificate: certificatePath, key: keyPath)
            }
        }
        loaded = Mutex(try Self.load(certificate: certificatePath, key: keyPath))
    }

    /// Whether the certificate is its own issuer (self-signed): IRC's STS is not offered with it.
    var selfIssued: Bool { loaded.withLock { $0.selfIssued } }

    /// The context a new connection's TLS handler uses.
    var context: NIOSSLContext { loaded.withLock { $0.context } }

    /// The SHA-256 fingerprint of the certificate served, as `openssl x509 -fingerprint -sha256` shows it.
    public var fingerprint: String { loaded.withLock { $0.fingerprint } }

    var description: String {
        let current = loaded.withLock { $0 }
        let until = current.notAfter.map { ", valid until \(ISO8601DateFormatter().string(from: $0))" } ?? ""
        return "\(current.subject)\(until)"
    }

    /// Reads the files again. Returns the old and new fingerprints; throws (keeping the old certificate) when the
    /// files cannot be read or do not make a working TLS context.
    @discardableResult
    public func reload() throws -> (old: String, new: String) {
        let fresh = try Self.load(certificate: certificatePath, key: keyPath)
        return loaded.withLock { loaded in
            defer { loaded = fresh }
            return (loaded.fingerprint, fresh.fingerprint)
        }
    }

    private static func load(certificate: String, key: String) throws -> Loaded {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw TLSSetupError("cannot read the certificate \(certificate): \(error)")
        }
        guard let leaf = chain.first else { throw TLSSetupError("\(certificate) holds no PEM certificate") }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw TLSSetupError("cannot read the private key \(key): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey)
        )
        configuration.minimumTLSVersion = .tlsv12
        // A peer that never answers close_notify must not hold its connection (and its session) past the
        // shutdown grace.
        configuration.shutdownTimeout = .seconds(1)
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("the certificate \(certificate) and the key \(key) do not make a TLS context (do they match?): \(error)")
        }
        let der = try leaf.toDERBytes()
        let parsed = try? Certificate(derEncoded: der)
        return Loaded(
            context: context, fingerprint: Fingerprint.of(der: der),
            subject: parsed.map { "\($0.subject)" } ?? "?", notAfter: parsed?.notValidAfter,
            selfIssued: parsed.map { $0.issuer == $0.subject } ?? true
        )
    }
}

/// The certificate `--tls` makes when it is given none: ECDSA P-256, for the server name (and localhost), valid
/// for ten years, its key readable by the owner only.
enum SelfSignedCertificate {
    static func make(for serverName: String, certificate: String, key: String) throws {
        let privateKey = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(serverName) }
        let now = Date()
        var names: [GeneralName] = [.dnsName(serverName)]
        if serverName != "localhost" { names.append(.dnsName("localhost")) }
        let made = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(privateKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 24 * 3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(privateKey)
        )
        let directory = URL(fileURLWithPath: key).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // The key first, created 0600 (never readable by others, not even for a moment), then the certificate.
        try writeFile(key, contents: privateKey.pemRepresentation, mode: 0o600)
        try writeFile(certificate, contents: try made.serializeAsPEM().pemString, mode: 0o644)
    }

    private static func writeFile(_ path: String, contents: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw TLSSetupError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        fchmod(descriptor, mode)  // an existing file keeps its mode through O_CREAT
        let bytes = Array((contents.hasSuffix("\n") ? contents : contents + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else { throw TLSSetupError("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += result
        }
    }
}

public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
