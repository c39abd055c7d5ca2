import Foundation
import Logging
import ParleyCore
import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads what can change while the server runs:
/// - the settings (`reread`: the configuration file read again; the executable logs what changed, and names
///   what takes a restart): the per-connection limits and flood control, for connections accepted from then on,
///   the per-address connection limits, and the message of the day's file;
/// - the TLS certificate from disk (a renewed Let's Encrypt certificate) and the message of the day.
/// A reload that fails keeps what was in use and says why. SIGHUP never ends the server, as the signal does by
/// default.
struct Reloader: Service {
    let provider: TLSProvider?
    /// The message of the day's file at start, if any; a reload may name another.
    let motd: String?
    let hub: ChatHub<Fanout>
    let limits: LiveLimits
    let addressLimits: AddressLimits
    /// The settings as they are now; nil when they cannot be read (the executable has said why).
    let reread: (@Sendable () -> ServerConfiguration?)?
    let logger: Logger

    init(
        provider: TLSProvider?, motd: String?, hub: ChatHub<Fanout>, limits: LiveLimits, addressLimits: AddressLimits,
        reread: (@Sendable () -> ServerConfiguration?)?, logger: Logger
    ) {
        self.provider = provider
        self.motd = motd
        self.hub = hub
        self.limits = limits
        self.addressLimits = addressLimits
        self.reread = reread
        self.logger = logger
    }

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        var motd = motd
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading the settings, the TLS certificate and the message of the day")
            if let reread, let configuration = reread() {
                apply(configuration)
                motd = configuration.motdFile
            }
            reloadMessageOfTheDay(motd)
            reloadCertificate()
        }
    }

    /// What can change live; the rest (ports, storage…) stays as it started.
    private func apply(_ configuration: ServerConfiguration) {
        var next = configuration.limits
        next.shutdownGrace = limits.current.shutdownGrace  // the service group's deadline was set from it at start
        limits.current = next
        addressLimits.update(configuration.addressLimits)
    }

    private func reloadCertificate() {
        guard let provider else {
            logger.notice("no TLS certificate to reload (no TLS port)")
            return
        }
        do {
            let (old, new) = try provider.reload()
            if old == new {
                logger.notice("TLS certificate reloaded; unchanged", metadata: ["fingerprint": "\(new)"])
            } else {
                logger.notice("TLS certificate reloaded", metadata: ["fingerprint": "\(new)", "previous": "\(old)", "certificate": "\(provider.description)"])
            }
        } catch {
            logger.error("TLS certificate reload failed; still serving the previous one", metadata: ["error": "\(error)"])
        }
    }

    /// Reads the message of the day again; a file that cannot be read keeps the one in use. A setting that no
    /// longer names a file clears it.
    private func reloadMessageOfTheDay(_ path: String?) {
        guard let path else {
            if !hub.motd.isEmpty {
                hub.motd = []
                logger.notice("message of the day removed (no motd file set any more)")
            }
            return
        }
        do {
            let lines = try MessageOfTheDay.read(path)
            let changed = lines != hub.motd
            hub.motd = lines
            logger.notice(changed ? "message of the day reloaded" : "message of the day reloaded; unchanged", metadata: ["lines": "\(lines.count)", "file": "\(path)"])
        } catch {
            logger.error("message of the day not reloaded; still showing the previous one", metadata: ["error": "\(error)", "file": "\(path)"])
        }
    }
}

/// The message of the day's file: UTF-8 text, each line one line of the message (cleaned like everything a
/// client is sent; blank lines kept as a space, so a paragraph break shows), at most 100 lines of 400 bytes.
enum MessageOfTheDay {
    struct Unreadable: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "cannot read the message of the day \(path): \(reason)" }
    }

    static func read(_ path: String) throws -> [String] {
        // At most 64 KiB read: 100 lines of 400 bytes fit, and /dev/zero given by mistake cannot fill memory.
        guard let file = FileHandle(forReadingAtPath: path) else { throw Unreadable(path: path, reason: "no such file, or not readable") }
        defer { try? file.close() }
        let data: Data
        do {
            data = try file.read(upToCount: 64 * 1024) ?? Data()
        } catch {
            throw Unreadable(path: path, reason: "\(error)")
        }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let cleaned = Sanitizer.text(String(line.hasSuffix("\r") ? line.dropLast() : line))
            var kept = ""
            for character in cleaned {
                guard kept.utf8.count + character.utf8.count <= 400 else { break }
                kept.append(character)
            }
            return kept.isEmpty ? " " : kept
        }
        while lines.last == " " { lines.removeLast() }
        return Array(lines.prefix(100))
    }
}
