import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Watches folders (with every folder inside them, including ones made later) and single files
/// with inotify, and reports the paths that changed, from one thread of its own.
///
/// Files are watched through their folder, so that an editor that saves by renaming a new file
/// over the old one is seen. Hidden folders, `.build` and `__pycache__` are not watched.
final class FileWatcher: Sendable {
    private let descriptor: Int32
    /// The path of each watch descriptor.
    private let watches = Mutex<[Int32: String]>([:])
    /// Files watched on their own, by path.
    private let files: Set<String>
    private let folders: [String]

    init(folders: [String], files: [String]) throws(WatchError) {
        descriptor = inotify_init1(Int32(IN_CLOEXEC))
        guard descriptor >= 0 else { throw WatchError("inotify: \(String(cString: strerror(errno)))") }
        self.folders = folders
        self.files = Set(files)
        for folder in folders { addTree(folder) }
        for parent in Set(files.map(Self.parent)) { add(parent) }
    }

    /// Calls `onChange` with each changed path, from a thread of its own, until the process ends.
    func start(onChange: @escaping @Sendable (String) -> Void) {
        let thread = BlockingThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return }
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let (watch, mask, nameLength) = buffer.withUnsafeBytes { raw in
                        let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                        return (event.wd, event.mask, Int(event.len))
                    }
                    let nameStart = offset + MemoryLayout<inotify_event>.size
                    let name = String(
                        decoding: buffer[nameStart..<nameStart + nameLength].prefix { $0 != 0 },
                        as: UTF8.self
                    )
                    offset = nameStart + nameLength
                    guard let folder = watches.withLock({ $0[watch] }) else { continue }
                    let path = name.isEmpty ? folder : folder + "/" + name
                    if mask & UInt32(IN_ISDIR) != 0 {
                        if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0, Self.isWatched(name) { addTree(path) }
                        continue
                    }
                    if isRelevant(path) { onChange(path) }
                }
            }
        }
        thread.start()
    }

    /// Whether a changed file is one of the watched files or inside a watched folder.
    private func isRelevant(_ path: String) -> Bool {
        files.contains(path) || folders.contains { path.hasPrefix($0 + "/") }
    }

    private func add(_ folder: String) {
        let mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE
        let watch = inotify_add_watch(descriptor, folder, UInt32(mask))
        if watch >= 0 { watches.withLock { $0[watch] = folder } }
    }

    private func addTree(_ folder: String) {
        add(folder)
        guard let stream = opendir(folder) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            guard entry.pointee.d_type == DT_DIR else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if Self.isWatched(name) { addTree(folder + "/" + name) }
        }
    }

    private static func isWatched(_ name: String) -> Bool {
        !name.hasPrefix(".") && name != "__pycache__"
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

struct WatchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
