import Glibc

/// A detached thread running a closure, as Foundation's Thread is used here: create, name, start.
/// (Thread lives in the full Foundation, which links ICU's data into the binary.)
public final class SystemThread {
    private var block: (() -> Void)?
    /// Posted by the new thread once it has its name (start() waits for it).
    private var named: UnsafeMutablePointer<sem_t>?
    /// The name the thread gives itself (shown by top -H, ps -L, gdb); at most 15 bytes are kept.
    public var name: String?

    /// The longest thread name Linux keeps (16 bytes with the terminating NUL); longer ones are cut.
    public static let maximumNameBytes = 15

    /// `prefix` followed by as much of `detail` as fits in a thread name, cut at a character
    /// boundary: for names that carry something variable (a device, a client number).
    public static func name(_ prefix: String, _ detail: String) -> String {
        var name = prefix
        for character in detail {
            guard name.utf8.count + character.utf8.count <= maximumNameBytes else { break }
            name.append(character)
        }
        return name
    }

    public init(block: @escaping () -> Void) {
        self.block = block
    }

    /// Starts the thread and returns once it has named itself, so that whoever lists the process's threads
    /// right after (`top -H`, a test) sees it under its name, not under the process's (which a new thread
    /// inherits): a loaded machine may run the new thread only milliseconds later.
    public func start() {
        var semaphore = sem_t()
        withUnsafeMutablePointer(to: &semaphore) { named in // one address for the semaphore's whole life
            sem_init(named, 0, 0)
            defer { sem_destroy(named) }
            self.named = named
            let context = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { context in
                let this = Unmanaged<SystemThread>.fromOpaque(context!).takeRetainedValue()
                if let name = this.name { SystemThread.setName(name) }
                let block = this.block, named = this.named
                this.block = nil
                this.named = nil
                if let named { sem_post(named) } // after this, start() returns and destroys it
                block?()
                return nil
            }, context)
            precondition(status == 0, "pthread_create failed: \(String(cString: strerror(status)))")
            pthread_detach(thread)
            while sem_wait(named) != 0 && errno == EINTR {}
        }
    }

    /// Names the calling thread (the main thread's name is the process's, as `ps` and `pgrep` show it).
    /// Glibc's module leaves out pthread_setname_np (a GNU extension); for the calling thread it writes
    /// /proc/thread-self/comm too. Linux keeps 15 bytes.
    public static func setName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(maximumNameBytes))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Sleeps the calling thread.
    public static func sleep(forTimeInterval seconds: Double) {
        guard seconds > 0 else { return }
        let whole = seconds.rounded(.down)
        var time = timespec(tv_sec: Int(whole), tv_nsec: min(999_999_999, Int((seconds - whole) * 1e9)))
        var left = timespec()
        while nanosleep(&time, &left) != 0 && errno == EINTR { time = left }
    }
}
