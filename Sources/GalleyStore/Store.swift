import Galley

/// A whole store, of which each namespace is a ``KeyValueStore``: ``SQLiteStore`` or ``MemoryStore``.
public protocol Store: Sendable {
    /// The store of one namespace.
    ///
    /// - Throws: ``StoreError`` `.invalidKey` for a name that is not letters, digits, `-` and `_`.
    func namespace(_ name: String) throws -> any KeyValueStore

    /// Deletes up to `limit` expired entries and returns how many. Expired entries are already
    /// invisible; this only frees their space.
    func purgeExpired(limit: Int) async throws -> Int

    /// Returns once every write already started has committed or been abandoned.
    func settle() async

    /// Makes the store ready now rather than at its first call (PostgreSQL connects and migrates).
    func prepare() async throws
}

extension Store {
    public func settle() async {}
    public func prepare() async throws {}
}

extension MemoryStore: Store {}
