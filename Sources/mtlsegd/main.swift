import MTLSegCore
import MTLSegDaemonCLI

MTLSegDaemonCommand.holdReloadsUntilRunning()
// OpenBLAS read its environment when it loaded, before this line: what it lacks takes a restart of
// the process with the variables set (BLASEnvironment).
BLASEnvironment.prepareProcess()
MTLSegDaemonCommand.main()
