// sd_notify and friends import into Swift as they are; this shim only names the header.
#include <systemd/sd-daemon.h>
