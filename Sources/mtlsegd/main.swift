import Glibc
import MTLSegCore
import MTLSegDaemonCLI

// OpenBLAS read its environment when it loaded, before this line; what it lacks takes a restart
// of the process with the variables set (BLASEnvironment). Past execv only if it failed: then
// OpenBLAS runs as it loaded.
let blasSettings = BLASEnvironment.missingSettings()
if !blasSettings.isEmpty {
    for setting in blasSettings { setenv(setting.name, setting.value, 1) }
    execv("/proc/self/exe", CommandLine.unsafeArgv)
}
MTLSegDaemonCommand.main()
