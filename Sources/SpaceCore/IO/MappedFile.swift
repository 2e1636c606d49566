import Foundation

/// Read-only access to a whole regular file through mmap, shared by the file-format readers.
enum MappedFile {
    /// Calls `body` with the bytes of the file at `path` (an empty buffer for an empty file). Open, stat
    /// and map failures, and paths that are not regular files, are `SpaceError.file` naming the path.
    static func withBytes<T>(path: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        func fail(_ message: String) -> SpaceError { .file(path: path, message: message) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw fail("not a regular file") }
        let size = Int(st.st_size)
        if size == 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw fail("cannot map: \(String(cString: strerror(errno)))")
        }
        defer { munmap(map, size) }
        return try body(UnsafeRawBufferPointer(start: map, count: size))
    }
}
