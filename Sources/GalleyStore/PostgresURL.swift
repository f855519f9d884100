import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A PostgreSQL connection URL as libpq reads it, for the parts Galley uses:
/// `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require][&host=/socket/folder]`.
/// `postgresql://` is the same. A `host` parameter that is a folder connects through the Unix
/// socket in it (`.s.PGSQL.<port>`).
package struct PostgresURL: CustomStringConvertible, Sendable {
    package var host: String
    package var port: Int
    package var socketFolder: String?
    package var user: String
    package var password: String?
    package var database: String
    package var sslMode: String

    package init(_ text: String) throws(StoreError) {
        func fail(_ why: String) -> StoreError {
            StoreError(
                .unavailable,
                "the PostgreSQL URL is not usable: \(why) (expected postgres://user@host:5432/database)"
            )
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw fail("it does not start with postgres://")
        }
        guard let user = components.user, !user.isEmpty else {
            throw fail("it names no user")
        }
        self.user = user
        password = components.password
        host = components.host ?? ""
        port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw fail("port \(port) is out of range") }
        database = String(components.path.drop { $0 == "/" })
        if database.isEmpty { database = user }
        sslMode = "disable"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, ["disable", "prefer", "require"].contains(value) else {
                    throw fail("sslmode must be disable, prefer or require")
                }
                sslMode = value
            case "host":
                guard let value = item.value, value.hasPrefix("/") else { throw fail("host= must be a socket folder") }
                socketFolder = value
            default:
                throw fail("Galley does not know the parameter '\(item.name)'")
            }
        }
        guard !host.isEmpty || socketFolder != nil else { throw fail("it names no host") }
    }

    /// The URL without its password.
    package var description: String {
        let place = socketFolder.map { "\($0) (socket)" } ?? "\(host):\(port)"
        return "\(user)@\(place)/\(database)"
    }
}
