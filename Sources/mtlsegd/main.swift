import MTLSegDaemonCLI

MTLSegDaemonCommand.main()
